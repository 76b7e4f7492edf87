package broker

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
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

	mu        sync.Mutex
	rlog      ReplicatedLog // nil until start
	m         *quorumMachine
	local     map[uint64]*qlocal // this node's consumers by key
	nextKey   uint32
	getKey    uint64          // the holder of this node's unacked basic.gets
	ghosts    map[uint64]bool // keys of this run's consumers the machine has and this node does not: cancel proposed
	deleted   bool
	leader    bool // LeaderChanged said this node leads
	downSent  map[uint64]bool
	expiry    clock.Timer
	expiryAt  int64
	liveTimer clock.Timer

	// The group's goroutine never proposes or publishes itself (a
	// Propose may wait for that goroutine; a dead letter may propose to
	// another group): what Apply and LeaderChanged leave to do goes to
	// outbox, run in order by a goroutine started when it is non-empty
	// and ending when it is empty. outMu guards both.
	outMu      sync.Mutex
	outbox     []func()
	outRunning bool
	// work, when set (tests), counts outbox items queued and not done,
	// so a fake cluster can tell when everything has settled.
	work func(delta int64)
}

// qlocal is a consumer on this node.
type qlocal struct {
	c       Consumer
	opts    ConsumeOptions
	key     uint64
	pending []qdelivery     // assigned by the machine, not yet taken
	held    map[uint64]bool // taken and not settled: what a cancel keeps
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
	// (node-restarted, node-up) but found no leader.
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
		m: newQuorumMachine(quorumConfigOf(&q.args)), local: map[uint64]*qlocal{}, ghosts: map[uint64]bool{},
		downSent: map[uint64]bool{}}
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
	b.mu.Unlock()
	b.soon(func() { b.proposeRetry(&qcmd{kind: qcNodeRestarted, target: b.node, epoch: b.epoch}, quorumRetryN) })
	if leader {
		b.LeaderChanged(b.node, true)
	}
}

// soon runs f after the caller returns, off the group's goroutine, in
// the order soon was called.
func (b *quorumBackend) soon(f func()) {
	b.outMu.Lock()
	b.outbox = append(b.outbox, f)
	if b.work != nil {
		b.work(1)
	}
	if b.outRunning {
		b.outMu.Unlock()
		return
	}
	b.outRunning = true
	b.outMu.Unlock()
	go b.drainOutbox()
}

func (b *quorumBackend) drainOutbox() {
	for {
		b.outMu.Lock()
		fs := b.outbox
		b.outbox = nil
		if len(fs) == 0 {
			b.outRunning = false
			b.outMu.Unlock()
			return
		}
		b.outMu.Unlock()
		for _, f := range fs {
			f()
			if b.work != nil {
				b.work(-1)
			}
		}
	}
}

func (b *quorumBackend) now() int64 { return b.vhost.broker.cfg.Clock.Now().UnixNano() }

// propose sends c to the group, stamped with this node and its clock.
func (b *quorumBackend) propose(c *qcmd, done func(any, error)) {
	b.mu.Lock()
	rl := b.rlog
	b.mu.Unlock()
	if done == nil {
		done = func(any, error) {}
	}
	if rl == nil {
		done(nil, errQuorumTimeout)
		return
	}
	c.node = b.node
	if c.kind != qcEnqueue {
		c.ts = b.now()
	}
	rl.Propose(c.encode(nil), done)
}

// proposeWait proposes c and waits, at most quorumWait, for its result.
func (b *quorumBackend) proposeWait(c *qcmd) (any, error) {
	type answer struct {
		res any
		err error
	}
	ch := make(chan answer, 1)
	b.propose(c, func(res any, err error) { ch <- answer{res, err} })
	t := time.NewTimer(quorumWait)
	defer t.Stop()
	select {
	case a := <-ch:
		if e, ok := a.res.(error); ok && a.err == nil {
			return nil, e
		}
		return a.res, a.err
	case <-t.C:
		return nil, errQuorumTimeout
	}
}

// proposeRetry proposes c until it is applied, at most n times, a
// quorumRetry apart, while the queue exists.
func (b *quorumBackend) proposeRetry(c *qcmd, n int) {
	b.propose(c, func(_ any, err error) {
		if err == nil || n <= 1 {
			return
		}
		b.mu.Lock()
		gone := b.deleted
		b.mu.Unlock()
		if !gone {
			b.vhost.broker.cfg.Clock.AfterFunc(quorumRetry, func() { b.proposeRetry(c, n-1) })
		}
	})
}

// Apply implements ReplicatedMachine: it applies a committed entry to the
// machine, then hands this node its effects.
func (b *quorumBackend) Apply(index uint64, data []byte) any {
	b.mu.Lock()
	res := b.m.Apply(index, data)
	ds, dead := b.m.deliveries, b.m.dead
	b.m.deliveries, b.m.dead = nil, nil
	var later []*qcmd
	for _, d := range ds {
		if d.node != b.node {
			continue
		}
		if lc := b.local[d.key]; lc != nil {
			lc.pending = append(lc.pending, d)
		} else if !b.deleted && d.key != b.getKey && uint32(d.key>>32) == b.epoch && !b.ghosts[d.key] {
			// A consumer this run made and no longer has (its consume
			// timed out and the checkout applied after the cancel):
			// cancel it again so its messages go back.
			b.ghosts[d.key] = true
			later = append(later, &qcmd{kind: qcCancel, key: d.key})
		}
	}
	for key := range b.ghosts {
		if b.m.consumer(b.node, key) == nil {
			delete(b.ghosts, key)
		}
	}
	if len(data) >= qcmdHeader {
		// The proposer answers, and node-up says its node does: the
		// leader may report them down again.
		delete(b.downSent, binary.BigEndian.Uint64(data[1:]))
		if len(data) == qcmdHeader+8 && qcmdKind(data[0]) == qcNodeUp {
			delete(b.downSent, binary.BigEndian.Uint64(data[qcmdHeader:]))
		}
	}
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
	b.mu.Unlock()
	if len(dead) > 0 && (rl == nil || !rl.IsLeader()) {
		dead = nil
	}
	if len(dead) > 0 || len(settle) > 0 || len(later) > 0 {
		b.soon(func() {
			b.deadLetter(dead)
			if len(settle) > 0 {
				b.propose(&qcmd{kind: qcSettle, refs: settle}, nil)
			}
			for _, c := range later {
				if c.kind == qcNodeUp {
					b.proposeRetry(c, quorumRetryN)
				} else {
					b.propose(c, nil)
				}
			}
		})
	}
	return res
}

// reconcileLocked drops what this node's consumers were given and no
// longer hold in the machine, and reports whether any consumer is left.
func (b *quorumBackend) reconcileLocked() bool {
	left := false
	for key, lc := range b.local {
		q := b.m.consumer(b.node, key)
		lc.pending = slices.DeleteFunc(lc.pending, func(d qdelivery) bool { return q == nil || q.out[d.id] == nil })
		for id := range lc.held {
			if q == nil || q.out[id] == nil {
				delete(lc.held, id)
			}
		}
		left = true
	}
	return left
}

// deliverLocked offers each local consumer its pending messages, in order,
// until it refuses one, and returns the deliveries to settle at once
// (no-ack consumers, and takes that settle themselves).
func (b *quorumBackend) deliverLocked() []qref {
	var settle []qref
	st := &b.vhost.broker.stats
	for _, lc := range b.local {
		n := 0
		for _, d := range lc.pending {
			v := lc.c.TryDeliver(Delivery{Queue: b.Queue, Msg: d.msg, Seq: d.id, Redelivered: d.redelivered,
				Remaining: d.remaining, qkey: lc.key})
			if v == Refuse {
				break
			}
			n++
			st.delivered.Add(1)
			if d.redelivered {
				st.redelivered.Add(1)
			}
			if v == TakeSettled || lc.opts.NoAck {
				settle = append(settle, qref{key: lc.key, id: d.id})
			} else {
				lc.held[d.id] = true
			}
		}
		if n > 0 {
			lc.pending = slices.Delete(lc.pending, 0, n)
		}
	}
	return settle
}

// Snapshot implements ReplicatedMachine.
func (b *quorumBackend) Snapshot() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m.Snapshot()
}

// Restore implements ReplicatedMachine. What this node's consumers were
// given and the snapshot no longer has them hold is forgotten.
func (b *quorumBackend) Restore(data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.m.Restore(data); err != nil {
		return err
	}
	b.reconcileLocked()
	b.armExpiryLocked()
	return nil
}

// LeaderChanged implements ReplicatedMachine. A new leader reports the
// consumer nodes that do not answer (their unacked messages come back
// redelivered) and takes over the TTL and liveness timers.
func (b *quorumBackend) LeaderChanged(leader uint64, isLocal bool) {
	b.mu.Lock()
	b.leader = isLocal
	if !isLocal || b.rlog == nil || b.deleted {
		b.stopTimersLocked()
		b.mu.Unlock()
		return
	}
	b.downSent = map[uint64]bool{}
	b.armExpiryLocked()
	b.mu.Unlock()
	b.soon(b.checkLiveness)
}

func (b *quorumBackend) stopTimersLocked() {
	if b.expiry != nil {
		b.expiry.Stop()
		b.expiryAt = 0
	}
	if b.liveTimer != nil {
		b.liveTimer.Stop()
		b.liveTimer = nil
	}
}

// checkLiveness proposes node-down for each consumer node that does not
// answer (once, until it answers again), and runs again in quorumLiveCheck
// while this node leads.
func (b *quorumBackend) checkLiveness() {
	b.mu.Lock()
	if !b.leader || b.deleted || b.rlog == nil {
		b.mu.Unlock()
		return
	}
	rl := b.rlog
	var down []uint64
	for n := range b.downSent {
		if rl.Live(n) {
			delete(b.downSent, n)
		}
	}
	for _, n := range b.m.consumerNodes() {
		if n != b.node && !b.downSent[n] && !rl.Live(n) {
			b.downSent[n] = true
			down = append(down, n)
		}
	}
	if b.liveTimer != nil {
		b.liveTimer.Stop()
	}
	b.liveTimer = b.vhost.broker.cfg.Clock.AfterFunc(quorumLiveCheck, b.checkLiveness)
	b.mu.Unlock()
	for _, n := range down {
		b.vhost.broker.log.Info("quorum queue: returning the messages of consumers on a node that does not answer",
			"queue", b.cfg.Name, "node", n)
		b.propose(&qcmd{kind: qcNodeDown, target: n}, nil)
	}
}

// armExpiryLocked has the leader's timer propose a tick when the head
// message expires.
func (b *quorumBackend) armExpiryLocked() {
	next := b.m.nextExpiry()
	if !b.leader || b.deleted || next == 0 || (b.expiryAt != 0 && b.expiryAt <= next) {
		return
	}
	b.expiryAt = next
	d := time.Duration(next - b.now() + 1)
	if b.expiry == nil {
		b.expiry = b.vhost.broker.cfg.Clock.AfterFunc(max(d, 0), b.onExpiry)
	} else {
		b.expiry.Reset(max(d, 0))
	}
}

func (b *quorumBackend) onExpiry() {
	b.mu.Lock()
	b.expiryAt = 0
	b.mu.Unlock()
	b.propose(&qcmd{kind: qcTick}, func(_ any, err error) {
		if err != nil {
			b.mu.Lock()
			b.armExpiryLocked()
			b.mu.Unlock()
		}
	})
}

// publish proposes an enqueue: done learns once the entry is committed on
// a quorum and applied here (a reject-publish refusal is an error: a
// nack).
func (b *quorumBackend) publish(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	b.mu.Lock()
	gone := b.deleted
	b.mu.Unlock()
	if gone {
		return Dropped, false
	}
	c := &qcmd{kind: qcEnqueue, ts: m.Published, record: message.AppendMessage(nil, m)}
	b.propose(c, func(res any, err error) {
		if done == nil {
			return
		}
		if e, ok := res.(error); ok && err == nil {
			err = e
		}
		done.Durable(token, err)
		if bc, ok := done.(message.BatchCompletion); ok {
			bc.DurableBatchEnd()
		}
	})
	return Enqueued, done != nil
}

// consume registers c and checks it out in the machine, waiting for the
// checkout to apply so an exclusive consumer is refused as on one node.
func (b *quorumBackend) consume(c Consumer, opts ConsumeOptions) error {
	b.mu.Lock()
	if b.deleted {
		b.mu.Unlock()
		return errorf(KindNotFound, "no queue '%s' in vhost '%s'", b.cfg.Name, b.vhost.name)
	}
	b.nextKey++
	key := uint64(b.epoch)<<32 | uint64(b.nextKey)
	b.local[key] = &qlocal{c: c, opts: opts, key: key, held: map[uint64]bool{}}
	b.mu.Unlock()
	credit := uint32(max(opts.Prefetch, 0))
	if opts.NoAck {
		credit = quorumNoAckCredit
	}
	var flags uint8
	if opts.Exclusive {
		flags = qfExclusive
	}
	_, err := b.proposeWait(&qcmd{kind: qcCheckout, key: key, prefetch: credit, priority: int32(opts.Priority), flags: flags})
	if err == nil {
		return nil
	}
	b.mu.Lock()
	delete(b.local, key)
	b.mu.Unlock()
	if errors.Is(err, errQuorumExclusive) {
		return errorf(KindAccessRefused, "queue '%s' in vhost '%s' in exclusive use", b.cfg.Name, b.vhost.name)
	}
	// The checkout may still apply: cancel it so nothing stays assigned.
	b.propose(&qcmd{kind: qcCancel, key: key}, nil)
	return causedf(KindResourceError, err, "quorum queue '%s' in vhost '%s' is unavailable", b.cfg.Name, b.vhost.name)
}

// cancel removes c. What it took and did not settle stays checked out to
// it until its channel acks or requeues it; the rest goes back.
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
	delete(b.local, lc.key)
	// Assignments to it before the cancel applies need no cancel of
	// their own: this one returns them. (A second cancel would return
	// what the consumer's channel still holds.)
	b.ghosts[lc.key] = true
	keep := make([]uint64, 0, len(lc.held))
	for id := range lc.held {
		keep = append(keep, id)
	}
	b.mu.Unlock()
	slices.Sort(keep)
	b.propose(&qcmd{kind: qcCancel, key: lc.key, ids: keep}, nil)
}

// dispatch offers pending messages to this node's consumers again.
func (b *quorumBackend) dispatch() {
	b.mu.Lock()
	settle := b.deliverLocked()
	b.mu.Unlock()
	if len(settle) > 0 {
		b.propose(&qcmd{kind: qcSettle, refs: settle}, nil)
	}
}

// refsLocked turns deliveries into settlements and forgets them locally.
func (b *quorumBackend) refsLocked(ds []Delivery) []qref {
	refs := make([]qref, len(ds))
	for i, d := range ds {
		refs[i] = qref{key: d.qkey, id: d.Seq}
		if lc := b.local[d.qkey]; lc != nil {
			delete(lc.held, d.Seq)
		}
	}
	return refs
}

// ack settles the deliveries with one proposal; the credit they free is
// used once it applies. Messages this node was given and its consumers
// refused for want of credit are offered again now.
func (b *quorumBackend) ack(ds []Delivery) {
	b.mu.Lock()
	refs := b.refsLocked(ds)
	refs = append(refs, b.deliverLocked()...)
	b.mu.Unlock()
	b.vhost.broker.stats.acked.Add(uint64(len(ds)))
	b.propose(&qcmd{kind: qcSettle, refs: refs}, nil)
}

// requeue returns the deliveries: each counts a delivery and goes back to
// its original place, or past x-delivery-limit to the dead-letter exchange.
func (b *quorumBackend) requeue(ds []Delivery) {
	b.mu.Lock()
	refs := b.refsLocked(ds)
	b.mu.Unlock()
	b.propose(&qcmd{kind: qcReturn, refs: refs}, nil)
}

// reject dead-letters the deliveries (reason rejected) or drops them.
func (b *quorumBackend) reject(ds []Delivery) {
	b.mu.Lock()
	refs := b.refsLocked(ds)
	b.mu.Unlock()
	b.propose(&qcmd{kind: qcDiscard, refs: refs}, nil)
}

// get checks out one message for basic.get, waiting at most quorumWait
// for the command to apply. A group without a leader has nothing to give.
func (b *quorumBackend) get(noAck bool) (Delivery, bool) {
	var flags uint8
	if noAck {
		flags = qfNoAck
	}
	res, err := b.proposeWait(&qcmd{kind: qcGet, key: b.getKey, flags: flags})
	g, ok := res.(*qgot)
	if err != nil || !ok {
		if err != nil {
			b.vhost.broker.log.Debug("quorum queue: basic.get failed", "queue", b.cfg.Name, "err", err)
		}
		return Delivery{}, false
	}
	st := &b.vhost.broker.stats
	st.delivered.Add(1)
	if g.redelivered {
		st.redelivered.Add(1)
	}
	return Delivery{Queue: b.Queue, Msg: g.msg, Seq: g.id, Redelivered: g.redelivered, Remaining: g.remaining, qkey: b.getKey}, true
}

// purge drops every ready message, waiting for the command to apply; 0
// when it did not.
func (b *quorumBackend) purge() int {
	res, err := b.proposeWait(&qcmd{kind: qcPurge})
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

// touch: quorum queues refuse x-expires, so use is not tracked.
func (b *quorumBackend) touch() {}

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
	b.local = map[uint64]*qlocal{}
	b.stopTimersLocked()
	// The messages leave memory with the queue; entries still in flight
	// apply to an empty machine that accounts nothing.
	for _, q := range b.m.msgs {
		b.m.bodyOut(q.size)
	}
	b.m = newQuorumMachine(b.m.cfg)
	rl := b.rlog
	b.mu.Unlock()
	if rl != nil {
		rl.Delete()
	}
	return n, consumers, nil
}
