package broker

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

// quorumBackend is this node's side of a quorum queue: its replica of the
// queue's state machine (quorum_machine.go), which it feeds the group's
// committed entries as the group's ReplicatedMachine, and the consumers
// connected to this node.
//
// Every operation is a proposal to the group: a publish proposes an
// enqueue and is confirmed once the entry is committed and applied; a
// consume proposes a checkout; acks, requeues and rejects propose
// settlements, one proposal per call. The machine assigns messages to
// consumers on every replica alike; after each Apply this node hands the
// messages assigned to its own consumers to them (TryDeliver, never
// blocking) and keeps those refused in the consumer's pending list until
// Dispatch. The leader alone publishes dead letters, proposes TTL expiry
// (a tick carrying its clock) and reports consumer nodes that stopped
// answering (node-down).
//
// mu guards every field below it and the machine; Apply, Snapshot and
// Restore run on the group's goroutine and take it. Lock order is mu →
// consumer internals (TryDeliver). Nothing is proposed, no dead letter
// published and no consumer told of a cancellation with mu held: a
// proposal may complete at once, on the caller's goroutine.
type quorumBackend struct {
	*Queue
	node  uint64 // this node: Replication.Node
	epoch uint32 // this run of the node: the high half of its consumer keys

	mu      sync.Mutex
	rlog    ReplicatedLog // nil until start
	m       *quorumMachine
	local   map[uint64]*qlocal // this node's consumers by key
	locals  []*qlocal          // the same, in a slice: deliverLocked runs per entry, and ranging over a map cost more than its work
	nextKey uint32
	getKey  uint64 // the holder of this node's unacked basic.gets
	// unclaimed are the messages this node's gets checked out (applied
	// here) that no get call has taken yet; getsWaiting are the get calls
	// waiting for their entry, by the sequence number getSeq gave them.
	// A call can only take what applied after it started: a message no
	// call that started before it applied still waits for belongs to a
	// get whose caller was told it failed (ErrLeaderChanged and proposal
	// timeouts say "may still commit"), and nobody will ever settle it,
	// so it goes back (returnUnclaimedLocked).
	// announcing is set while this run's node-restarted is proposed and
	// not applied: the replay of an earlier run's log, where every
	// checkout and get of that run asks for one, proposes one.
	announcing  bool
	unclaimed   map[uint64]unclaimedGet
	getsWaiting map[uint64]bool
	getSeq      uint64
	ghosts      map[uint64]bool // keys of this run's consumers the machine has and this node does not: cancel proposed
	// inflight counts, per consumer key, the settlements proposed and
	// not yet applied or given up; closing holds the consumers cancelled
	// while theirs were in flight: their cancel is proposed once none
	// is, so it cannot overtake a settlement and return what the client
	// already has (settlementDone).
	inflight map[uint64]int
	closing  map[uint64]*qlocal
	// acks are the settlements of acks not yet proposed; acksQueued says
	// the outbox will propose them (ack, flushAcks).
	acks       []qref
	acksQueued bool
	deleted    bool
	leader     bool // LeaderChanged said this node leads
	downSent   map[uint64]bool
	expiry     clock.Timer
	expiryAt   int64
	liveTimer  clock.Timer
	unused     clock.Timer // x-expires, on the leader
	unusedAt   int64
	usesSeen   uint64 // the machine's uses when this node, leading, last saw them change
	usedAt     int64  // when (this node's clock)

	// The group's goroutine never proposes or publishes itself (a
	// Propose may wait for that goroutine; a dead letter may propose to
	// another group): what Apply and LeaderChanged leave to do goes to
	// outbox, run in order by a goroutine started when it is non-empty
	// and ending when it is empty. outMu guards both.
	outMu      sync.Mutex
	outbox     []func()
	outRunning bool
	// retries are the proposals waiting for their next attempt, in the
	// order they failed; one timer (retryArmed) sends them all.
	retryMu    sync.Mutex
	retries    []retryItem
	retryArmed bool
	// parked are the proposals whose attempts ran out: they go out again
	// when the group shows it works (retryIfWaiting). anyParked says
	// there are some without taking retryMu.
	parked    []retryItem
	anyParked atomic.Bool
	// work, when set (tests), counts outbox items queued and not done,
	// so a fake cluster can tell when everything has settled.
	work func(delta int64)
}

// qlocal is a consumer on this node.
type qlocal struct {
	c       Consumer
	opts    ConsumeOptions
	key     uint64
	pending []qdelivery       // assigned by the machine, not yet taken
	held    map[uint64]uint32 // taken and not settled (id → acquired): what a cancel keeps
}

// Timings of a quorum queue.
const (
	// quorumWait bounds the synchronous operations (consume, basic.get,
	// purge): how long they wait for their entry to be applied.
	quorumWait = 5 * time.Second
	// quorumLiveCheck is how often the leader looks for consumer nodes
	// that stopped answering.
	quorumLiveCheck = time.Second
	// quorumRetry spaces the retries of proposals that must happen
	// (settlements, cancels, node-restarted, node-up) but found no leader.
	quorumRetry  = time.Second
	quorumRetryN = 120
	// quorumNoAckCredit is a no-ack consumer's credit: its node settles
	// each message once the consumer took it, so at most this many are
	// in flight to it.
	quorumNoAckCredit = 256
)

var errQuorumTimeout = errors.New("broker: the quorum queue's group did not apply the command in time")

func newQuorumBackend(q *Queue) *quorumBackend {
	var e [4]byte
	_, _ = rand.Read(e[:])
	epoch := binary.BigEndian.Uint32(e[:]) | 1 // never 0
	b := &quorumBackend{Queue: q, node: q.vhost.broker.cfg.Replication.Node, epoch: epoch,
		m: newQuorumMachine(quorumConfigOf(q.args)), local: map[uint64]*qlocal{}, ghosts: map[uint64]bool{},
		inflight: map[uint64]int{}, closing: map[uint64]*qlocal{}, downSent: map[uint64]bool{},
		unclaimed: map[uint64]unclaimedGet{}, getsWaiting: map[uint64]bool{}}
	b.getKey = uint64(epoch) << 32
	br := q.vhost.broker
	b.m.bodyIn, b.m.bodyOut = br.bodyIn, br.bodyOut
	return b
}

// start records the opened group and announces this run of the node, so
// consumers of an earlier run (a restart) give their messages back.
func (b *quorumBackend) start(rl ReplicatedLog) {
	b.mu.Lock()
	b.rlog = rl
	leader := b.leader
	stale := b.staleRunLocked()
	b.mu.Unlock()
	if stale {
		b.soon(b.announceRun)
	}
	// Entries a replay applied while the group opened may have proposed
	// already (a node-restarted for an earlier run's checkout): without
	// a log those failed and wait for the retry timer, and the announce
	// above does nothing while one is on its way. Send them now.
	b.soon(b.retryIfWaiting)
	if leader {
		b.LeaderChanged(b.node, true)
	}
}

// Apply implements ReplicatedMachine: it applies a committed entry to the
// machine, then hands this node its effects.
func (b *quorumBackend) Apply(index uint64, data []byte) any {
	b.mu.Lock()
	res := b.m.Apply(index, data)
	ds, dead := b.m.deliveries, b.m.dead
	b.m.dead = nil
	var later []*qcmd
	announce := false
	var last *qlocal // most entries assign to one consumer: one map lookup per run
	for _, d := range ds {
		if d.node != b.node {
			continue
		}
		lc := last
		if lc == nil || lc.key != d.key {
			lc = b.local[d.key]
		}
		if lc != nil {
			last = lc
			lc.pending = append(lc.pending, d)
		} else if !b.deleted && d.key != b.getKey && uint32(d.key>>32) == b.epoch && !b.ghosts[d.key] {
			// A consumer this run made and no longer has (its consume
			// timed out and the checkout applied after the cancel):
			// cancel it again so its messages go back.
			b.ghosts[d.key] = true
			later = append(later, &qcmd{kind: qcCancel, key: d.key})
		}
	}
	// The slice is the machine's again (pending holds copies): most
	// entries assign a message, and a new slice for each cost an
	// allocation per message on every replica. A large one (a burst of
	// credit) is let go.
	clear(ds)
	if cap(ds) > 1024 {
		ds = nil
	}
	b.m.deliveries = ds[:0]
	for key := range b.ghosts {
		if b.m.consumer(b.node, key) == nil {
			delete(b.ghosts, key)
		}
	}
	if len(data) >= qcmdHeader && len(b.downSent) > 0 {
		// The proposer answers, and node-up says its node does: the
		// leader may report them down again.
		delete(b.downSent, binary.BigEndian.Uint64(data[1:]))
		if len(data) == qcmdHeader+8 && qcmdKind(data[0]) == qcNodeUp {
			delete(b.downSent, binary.BigEndian.Uint64(data[qcmdHeader:]))
		}
	}
	if len(data) >= qcmdHeader+8 && (qcmdKind(data[0]) == qcCheckout || qcmdKind(data[0]) == qcGet) &&
		binary.BigEndian.Uint64(data[1:]) == b.node && uint32(binary.BigEndian.Uint64(data[qcmdHeader:])>>32) != b.epoch {
		// An earlier run's checkout, applied only now (this replica was
		// behind): that run's consumers are gone. One node-restarted on
		// its way is enough (a replay has many such entries).
		announce = !b.announcing
		b.announcing = true
	}
	if g, ok := res.(*qgot); ok && qcmdKind(data[0]) == qcGet && binary.BigEndian.Uint64(data[1:]) == b.node &&
		binary.BigEndian.Uint64(data[qcmdHeader:]) == b.getKey {
		b.unclaimed[g.id] = unclaimedGet{acquired: g.acquired, seq: b.getSeq}
	}
	back := b.returnUnclaimedLocked()
	if len(data) >= qcmdHeader+8 && qcmdKind(data[0]) == qcNodeDown && binary.BigEndian.Uint64(data[qcmdHeader:]) == b.node {
		// The leader thought this node down: its consumers' messages
		// went back. Forget them here and ask for the consumers back.
		if b.reconcileLocked() {
			later = append(later, &qcmd{kind: qcNodeUp, target: b.node})
		}
	}
	settle := b.deliverLocked()
	rl := b.rlog
	b.armExpiryLocked()
	b.armUnusedLocked()
	if b.leader && b.liveTimer == nil && b.remoteConsumersLocked() {
		b.liveTimer = b.vhost.broker.cfg.Clock.AfterFunc(quorumLiveCheck, b.checkLiveness)
	}
	b.mu.Unlock()
	if len(dead) > 0 && (rl == nil || !rl.IsLeader()) {
		dead = nil
	}
	if b.anyParked.Load() {
		b.soon(b.retryIfWaiting) // the group works: what waited for it goes out
	}
	if announce {
		b.soon(b.proposeAnnounce)
	}
	if len(dead) > 0 || len(settle) > 0 || len(back) > 0 || len(later) > 0 {
		b.soon(func() {
			b.deadLetters(dead)
			b.proposeSettlement(qcSettleAt, 0, settle)
			b.proposeSettlement(qcReturnAt, 0, back)
			for _, c := range later {
				b.proposeRetry(c, quorumRetryN, nil)
			}
		})
	}
	return res
}

// deadLetters publishes the messages the machine dead-lettered, decoded
// here: only the leader does, off the group's goroutine.
func (b *quorumBackend) deadLetters(dead []qdead) {
	if len(dead) == 0 {
		return
	}
	out := make([]deadLetter, 0, len(dead))
	for _, d := range dead {
		msg, err := message.DecodeMessage(d.rec)
		if err != nil {
			b.vhost.broker.log.Error("quorum queue: a dead-lettered message's record does not decode: dropped",
				"queue", b.cfg.Name, "reason", d.reason, "err", err)
			continue
		}
		out = append(out, deadLetter{msg: msg, reason: d.reason})
	}
	b.deadLetter(out)
}

// reconcileLocked drops what this node's consumers (and those whose
// cancel waits) were given and no longer hold in the machine, and reports
// whether any consumer is left.
func (b *quorumBackend) reconcileLocked() bool {
	gone := func(q *qconsumer, id uint64, acq uint32) bool {
		msg := b.m.heldBy(q, id)
		if msg == nil {
			return true
		}
		return acq != 0 && msg.acquired != 0 && msg.acquired != acq
	}
	for key, lc := range b.closing {
		q := b.m.consumer(b.node, key)
		for id, acq := range lc.held {
			if gone(q, id, acq) {
				delete(lc.held, id)
			}
		}
	}
	left := false
	for key, lc := range b.local {
		q := b.m.consumer(b.node, key)
		lc.pending = slices.DeleteFunc(lc.pending, func(d qdelivery) bool { return gone(q, d.id, d.acquired) })
		for id, acq := range lc.held {
			if gone(q, id, acq) {
				delete(lc.held, id)
			}
		}
		left = true
	}
	return left
}

// localDownLocked reports whether the machine has one of this node's
// consumers down (the leader reported the node down) while it is here.
func (b *quorumBackend) localDownLocked() bool {
	for key := range b.local {
		if q := b.m.consumer(b.node, key); q != nil && q.status == qsDown {
			return true
		}
	}
	return false
}

// deliverLocked offers each local consumer its pending messages, in order,
// until it refuses one, and returns the deliveries to settle at once
// (no-ack consumers, and takes that settle themselves), counted in
// flight: the caller proposes them (proposeSettlement).
func (b *quorumBackend) deliverLocked() []qref {
	var settle []qref
	st := &b.vhost.broker.stats
	for _, lc := range b.locals {
		n := 0
		for _, d := range lc.pending {
			if !lc.opts.NoAck && lc.opts.Prefetch > 0 && len(lc.held) >= lc.opts.Prefetch {
				break // the rest were assigned ahead (checkoutCredit): they wait for the client's acks
			}
			if d.msg == nil {
				msg, err := message.DecodeMessage(d.rec)
				if err != nil {
					// PeekRecord refuses at enqueue what does not
					// decode; a record an earlier version enqueued may
					// still get here: discarded through the log, so
					// every replica drops it alike.
					b.vhost.broker.log.Error("quorum queue: a message's record does not decode: discarding it",
						"queue", b.cfg.Name, "id", d.id, "err", err)
					bad := []qref{{key: lc.key, id: d.id, acquired: d.acquired}}
					b.inflightLocked(bad)
					b.soon(func() { b.proposeSettlement(qcDiscardAt, 0, bad) })
					n++
					continue
				}
				d.msg = msg
				lc.pending[n].msg = msg // decoded once, though refused now
			}
			v := lc.c.TryDeliver(Delivery{Queue: b.Queue, Msg: withDeliveryCount(d.msg, d.count, d.acquired), Seq: d.id,
				Redelivered: d.redelivered, Remaining: d.remaining, qkey: lc.key, qacq: d.acquired})
			if v == Refuse {
				break
			}
			n++
			st.delivered.Add(1)
			b.Queue.countDelivered(d.redelivered)
			if d.redelivered {
				st.redelivered.Add(1)
			}
			if v == TakeSettled || lc.opts.NoAck {
				settle = append(settle, qref{key: lc.key, id: d.id, acquired: d.acquired})
			} else {
				lc.held[d.id] = d.acquired
			}
		}
		if n > 0 {
			// Taken from the front: slide past them rather than move the
			// rest down. The node holds up to a prefetch's worth assigned
			// ahead (checkoutCredit) and each ack frees room for one:
			// moving the rest down copied them all on every ack.
			clear(lc.pending[:n])
			lc.pending = lc.pending[n:]
		}
	}
	b.inflightLocked(settle)
	return settle
}

// HeaderDeliveryCount is the header in which a quorum queue tells how
// often a message's delivery failed before (basic.reject with requeue:
// RabbitMQ 4.3's x-delivery-count).
const HeaderDeliveryCount = "x-delivery-count"

// HeaderAcquiredCount is the header in which a quorum queue tells how
// often a message was checked out to a consumer before, however each
// checkout ended (a plain requeue, a closed channel, a failed delivery):
// RabbitMQ 4.3's x-acquired-count, beside x-delivery-count's failures.
const HeaderAcquiredCount = "x-acquired-count"

// withDeliveryCount is m, or for a message checked out before a copy of
// it carrying its counters: count failed deliveries (x-delivery-count)
// and acquired checkouts, this one included (x-acquired-count is the
// earlier ones; acquired is 0 when unknown, in a version 1 snapshot). The
// machine's message is never changed.
func withDeliveryCount(m *message.Message, count, acquired uint32) *message.Message {
	if count == 0 && acquired <= 1 {
		return m
	}
	c := *m
	h := make(map[string]any, len(m.Props.Headers)+2)
	for k, v := range m.Props.Headers {
		h[k] = v
	}
	if count > 0 {
		h[HeaderDeliveryCount] = int64(count)
	}
	if acquired > 1 {
		h[HeaderAcquiredCount] = int64(acquired - 1)
	}
	c.Props.Headers = h
	c.WireProps = nil
	return &c
}

// publish proposes an enqueue: done learns once the entry is committed on
// a quorum and applied here (a reject-publish refusal is an error: a
// nack).
func (b *quorumBackend) publish(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	// One look under mu, not one here and one in propose: the group's
	// goroutine holds mu while it applies, and every publish waited for
	// it twice.
	b.mu.Lock()
	gone, rl := b.deleted, b.rlog
	b.mu.Unlock()
	if gone {
		return Dropped, false
	}
	fin := func(res any, err error) {
		if done == nil {
			return
		}
		if e, ok := res.(error); ok && err == nil {
			err = e // refused by the machine (reject-publish)
		} else if err != nil {
			err = &notAppliedError{err}
		}
		done.Durable(token, err)
		if bc, ok := done.(message.BatchCompletion); ok {
			bc.DurableBatchEnd()
		}
	}
	if rl == nil {
		fin(nil, errQuorumTimeout)
		return Enqueued, done != nil
	}
	c := qcmd{kind: qcEnqueue, node: b.node, ts: m.Published, msg: m}
	rl.Propose(c.encode(make([]byte, 0, c.sizeHint())), fin)
	return Enqueued, done != nil
}

// quorumConsumeRetries bounds the checkouts a consume proposes again after
// a failure that was not a timeout (a leader change).
const quorumConsumeRetries = 4

// consume registers c and checks it out in the machine, waiting for the
// checkout to apply so an exclusive consumer is refused as on one node.
func (b *quorumBackend) consume(c Consumer, opts ConsumeOptions) error {
	b.mu.Lock()
	if b.deleted {
		b.mu.Unlock()
		return errorf(KindNotFound, "no queue '%s' in vhost '%s'", b.cfg.Name, b.vhost.name)
	}
	b.nextKey++
	if b.nextKey == 0 {
		b.nextKey = 1 // key epoch<<32 is the get holder's
	}
	key := uint64(b.epoch)<<32 | uint64(b.nextKey)
	lc := &qlocal{c: c, opts: opts, key: key, held: map[uint64]uint32{}}
	b.local[key] = lc
	b.locals = append(b.locals, lc)
	b.mu.Unlock()
	credit := checkoutCredit(opts.Prefetch)
	if opts.NoAck {
		credit = quorumNoAckCredit
	}
	var flags uint8
	if opts.Exclusive {
		flags = qfExclusive
	}
	// A checkout lost in a leader change (the cluster fails waiting
	// proposals at once then) is proposed again, within one quorumWait
	// overall: a second checkout of the same key changes nothing if the
	// first did commit. The client gets consume-ok once the queue has a
	// leader again instead of an error that closes its connection.
	checkout := &qcmd{kind: qcCheckout, key: key, prefetch: credit, priority: int32(opts.Priority), flags: flags}
	deadline := b.now() + int64(quorumWait)
	var err error
	for attempt := 0; ; attempt++ {
		if _, err = b.proposeWait(checkout, nil); err == nil {
			return nil
		}
		if errors.Is(err, errQuorumExclusive) || errors.Is(err, errQuorumTimeout) || attempt >= quorumConsumeRetries || b.now() >= deadline {
			break
		}
	}
	b.mu.Lock()
	b.dropLocalLocked(lc)
	b.mu.Unlock()
	if errors.Is(err, errQuorumExclusive) {
		return errorf(KindAccessRefused, "queue '%s' in vhost '%s' in exclusive use", b.cfg.Name, b.vhost.name)
	}
	// The checkout may still apply: cancel it so nothing stays assigned.
	b.proposeRetry(&qcmd{kind: qcCancelAt, key: key}, quorumRetryN, nil)
	return causedf(KindResourceError, err, "quorum queue '%s' in vhost '%s' is unavailable", b.cfg.Name, b.vhost.name)
}

// cancel removes c. What it took and did not settle stays checked out to
// it until its channel acks or requeues it; the rest goes back. The
// cancel is proposed once no settlement of c's is in flight: applied
// before one, it would return, unmarked, a message the client has (a
// no-ack delivery whose settle is queued, an ack waiting for a retry).
func (b *quorumBackend) cancel(c Consumer) {
	b.mu.Lock()
	var lc *qlocal
	for _, l := range b.local {
		if l.c == c {
			lc = l
			break
		}
	}
	if lc == nil {
		b.mu.Unlock()
		return
	}
	b.dropLocalLocked(lc)
	// Assignments to it before the cancel applies need no cancel of
	// their own: this one returns them. (A second cancel would return
	// what the consumer's channel still holds.)
	b.ghosts[lc.key] = true
	if b.inflight[lc.key] > 0 {
		b.closing[lc.key] = lc // settlementDone proposes the cancel
		b.mu.Unlock()
		return
	}
	c2 := cancelOf(lc)
	b.mu.Unlock()
	b.proposeRetry(c2, quorumRetryN, nil)
}

// dropLocalLocked forgets the local consumer lc.
func (b *quorumBackend) dropLocalLocked(lc *qlocal) {
	delete(b.local, lc.key)
	if i := slices.Index(b.locals, lc); i >= 0 {
		b.locals = slices.Delete(b.locals, i, i+1)
	}
}

// cancelOf is the cancel of lc, keeping the deliveries it holds.
func cancelOf(lc *qlocal) *qcmd {
	keep := make([]qref, 0, len(lc.held))
	for id, acq := range lc.held {
		keep = append(keep, qref{id: id, acquired: acq})
	}
	slices.SortFunc(keep, func(x, y qref) int { return cmp.Compare(x.id, y.id) })
	return &qcmd{kind: qcCancelAt, key: lc.key, keep: keep}
}

// dispatch offers pending messages to this node's consumers again.
func (b *quorumBackend) dispatch() {
	b.mu.Lock()
	settle := b.deliverLocked()
	b.mu.Unlock()
	b.proposeSettlement(qcSettleAt, 0, settle)
}

// get checks out one message for basic.get, waiting at most quorumWait
// for the command to apply. A group without a leader has nothing to give.
// A get that applies although its caller was told it failed (the wait
// timed out, or the cluster failed it at a leader change: it may still
// commit) — the client was told get-empty — gives its message back, not
// counted, marked redelivered (unclaimed). So that this holds for
// no-ack gets too, a no-ack get checks out like any other and settles
// once the client has its message.
func (b *quorumBackend) get(noAck bool) (Delivery, bool) {
	b.mu.Lock()
	b.getSeq++
	seq := b.getSeq
	b.getsWaiting[seq] = true
	b.mu.Unlock()
	res, err := b.proposeWait(&qcmd{kind: qcGet, key: b.getKey}, nil)
	g, ok := res.(*qgot)
	b.mu.Lock()
	delete(b.getsWaiting, seq)
	if err == nil && ok {
		delete(b.unclaimed, g.id)
	}
	back := b.returnUnclaimedLocked()
	b.mu.Unlock()
	b.proposeSettlement(qcReturnAt, 0, back)
	if err != nil || !ok {
		if err != nil {
			b.vhost.broker.log.Debug("quorum queue: basic.get failed", "queue", b.cfg.Name, "err", err)
		}
		return Delivery{}, false
	}
	msg, derr := message.DecodeMessage(g.rec)
	if derr != nil {
		b.vhost.broker.log.Error("quorum queue: a message's record does not decode: discarding it",
			"queue", b.cfg.Name, "id", g.id, "err", derr)
		b.mu.Lock()
		bad := []qref{{key: b.getKey, id: g.id, acquired: g.acquired}}
		b.inflightLocked(bad)
		b.mu.Unlock()
		b.proposeSettlement(qcDiscardAt, 0, bad)
		return Delivery{}, false
	}
	if noAck {
		b.mu.Lock()
		refs := []qref{{key: b.getKey, id: g.id, acquired: g.acquired}}
		b.inflightLocked(refs)
		b.mu.Unlock()
		b.proposeSettlement(qcSettleAt, 0, refs)
	}
	st := &b.vhost.broker.stats
	st.delivered.Add(1)
	if g.redelivered {
		st.redelivered.Add(1)
	}
	return Delivery{Queue: b.Queue, Msg: withDeliveryCount(msg, g.count, g.acquired), Seq: g.id, Redelivered: g.redelivered,
		Remaining: g.remaining, qkey: b.getKey, qacq: g.acquired}, true
}

// unclaimedGet is a message a get of this node checked out: its
// delivery, and the last get call started when it applied.
type unclaimedGet struct {
	acquired uint32
	seq      uint64
}

// returnUnclaimedLocked returns, as settlements to propose (counted in
// flight), the messages this node's gets checked out that no get call
// will take: those unclaimed that no call waiting now started before.
// Such a get applied after its caller was told it failed (a leader
// change, a timeout) and answered get-empty.
func (b *quorumBackend) returnUnclaimedLocked() []qref {
	if len(b.unclaimed) == 0 {
		return nil
	}
	first := uint64(1<<64 - 1) // the earliest call still waiting
	for seq := range b.getsWaiting {
		first = min(first, seq)
	}
	var refs []qref
	for id, u := range b.unclaimed {
		if u.seq < first {
			refs = append(refs, qref{key: b.getKey, id: id, acquired: u.acquired})
			delete(b.unclaimed, id)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	slices.SortFunc(refs, func(x, y qref) int { return cmp.Compare(x.id, y.id) })
	b.vhost.broker.log.Debug("quorum queue: returning the messages of basic.gets whose callers were told they failed",
		"queue", b.cfg.Name, "n", len(refs))
	b.inflightLocked(refs)
	return refs
}

// purge drops every ready message, waiting for the command to apply; 0
// when it did not.
func (b *quorumBackend) purge() int {
	res, err := b.proposeWait(&qcmd{kind: qcPurge}, nil)
	n, _ := res.(int)
	if err != nil {
		b.vhost.broker.log.Warn("quorum queue: purge failed", "queue", b.cfg.Name, "err", err)
	}
	return n
}

// counts are this replica's: a follower may lag the leader by the entries
// in flight.
func (b *quorumBackend) counts() (ready, unacked, consumers int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.ready.len(), b.m.unacked, b.m.liveConsumers()
}

func (b *quorumBackend) readyBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.readyBytes
}

// touch records use of the queue for x-expires (a redeclare, on the
// client's node): a touch entry, so the leader's countdown restarts
// whichever node saw the use.
func (b *quorumBackend) touch() {
	if b.cur().expires > 0 {
		b.soon(func() { b.propose(&qcmd{kind: qcTouch}, nil) })
	}
}

// restore: the group recovers its own state from the node's WAL when it
// is opened.
func (b *quorumBackend) restore() int { return 0 }

// close marks the queue deleted on this node, stops its replica and
// removes the group's state from this node. Called with the vhost's lock
// held; the group's goroutine never takes it.
func (b *quorumBackend) close(ifUnused, ifEmpty bool) (int, []Consumer, error) {
	b.mu.Lock()
	if ifUnused && b.m.liveConsumers() > 0 {
		b.mu.Unlock()
		return 0, nil, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' in use", b.cfg.Name, b.vhost.name)
	}
	if ifEmpty && b.m.ready.len() > 0 {
		b.mu.Unlock()
		return 0, nil, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' is not empty", b.cfg.Name, b.vhost.name)
	}
	if b.deleted {
		b.mu.Unlock()
		return 0, nil, nil
	}
	n := b.m.ready.len()
	b.deleted = true
	var consumers []Consumer
	for _, lc := range b.local {
		consumers = append(consumers, lc.c)
	}
	b.local, b.locals = map[uint64]*qlocal{}, nil
	b.stopTimersLocked()
	// The messages leave memory with the queue; entries still in flight
	// apply to an empty machine that accounts nothing.
	b.m.msgs.each(func(q *qmsg) { b.m.bodyOut(q.size) })
	b.m = newQuorumMachine(b.m.cfg)
	rl := b.rlog
	b.mu.Unlock()
	if rl != nil {
		rl.Delete()
	}
	return n, consumers, nil
}
