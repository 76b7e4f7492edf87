package forward

import (
	"bytes"
	"context"
	"math"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// remoteConsumer is, on the client's node, a local consumer of a queue
// another node holds. The owner pushes deliveries (KindDeliver), each
// with the next id of this consumer; they wait in pending until the local
// consumer takes them, in order. released counts the deliveries this node
// is done with — taken, or found lost — and is the consumer's credit on
// the owner when it has no prefetch of its own.
type remoteConsumer struct {
	l     *link
	id    uint64
	q     *broker.Queue
	c     broker.Consumer
	noAck bool
	// credit: the owner's window is pushed - released (no prefetch);
	// with a prefetch its window is its unacked, which settles free.
	credit bool

	mu       sync.Mutex
	pending  []broker.Delivery
	next     uint64 // the id the next delivery should have
	released uint64
	open     bool // the owner answered the consume
	gone     bool // cancelled or dropped: deliveries go back
}

// Consume implements broker.Forwarder: it opens a consumer on q's node and
// waits (RequestTimeout at most) for its answer.
func (f *Forwarder) Consume(q *broker.Queue, c broker.Consumer, opts broker.ConsumeOptions) error {
	l := f.link(q.Node())
	rc := &remoteConsumer{l: l, id: f.nextConsumer.Add(1), q: q, c: c, noAck: opts.NoAck, next: 1,
		credit: opts.NoAck || opts.Prefetch <= 0}
	key := qc{q, c}
	f.mu.Lock()
	if f.byQC[key] != nil {
		f.mu.Unlock()
		return &broker.Error{Kind: broker.KindNotAllowed, Text: "consumer already consuming from queue '" + q.Name() + "'"}
	}
	f.byQC[key] = rc
	f.byQueue[q] = append(f.byQueue[q], rc)
	f.mu.Unlock()
	l.mu.Lock()
	l.consumers[rc.id] = rc
	if len(l.consumers) == 1 && l.gets == 0 {
		l.lastOK = f.cfg.Clock.Now() // the lease starts now
	}
	l.mu.Unlock()

	req := consumeReq{Epoch: f.epoch, Consumer: rc.id, Ref: refOf(q), NoAck: opts.NoAck, Exclusive: opts.Exclusive,
		Priority: int64(opts.Priority), Prefetch: uint64(max(opts.Prefetch, 0))}
	if q.IsStream() {
		req.Stream = encodeStreamOptions(opts.Stream)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindConsume, req.append(nil))
	cancel()
	var kind uint64
	var text string
	if err == nil {
		kind, text, err = decodeStatus(reply)
	}
	if err == nil && kind == 0 {
		rc.mu.Lock()
		rc.open = true
		rc.mu.Unlock()
		rc.drain() // what arrived before the answer
		return nil
	}
	// Refused or unanswered: forget it here, and make sure the owner has
	// no consumer left behind. Nothing it pushed reached c (drain waits
	// for open), so the owner requeues all it holds: what arrived here
	// (pending), what is on its way and what was lost.
	f.forget(rc)
	l.mu.Lock()
	l.addOpLocked(ctlOp{Op: opAbort, Consumer: rc.id})
	delete(l.credit, rc.id)
	l.kickLocked()
	l.mu.Unlock()
	if err != nil {
		l.failed(err)
		return f.unreachable(q, err)
	}
	return &broker.Error{Kind: broker.Kind(kind), Text: text}
}

// forget removes rc from the maps and marks it gone; it reports whether
// it was still there. Its pending deliveries are returned.
func (f *Forwarder) forget(rc *remoteConsumer) ([]broker.Delivery, bool) {
	f.mu.Lock()
	key := qc{rc.q, rc.c}
	was := f.byQC[key] == rc
	if was {
		delete(f.byQC, key)
		list := f.byQueue[rc.q]
		for i, x := range list {
			if x == rc {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(f.byQueue, rc.q)
		} else {
			f.byQueue[rc.q] = list
		}
	}
	f.mu.Unlock()
	rc.l.mu.Lock()
	if rc.l.consumers[rc.id] == rc {
		delete(rc.l.consumers, rc.id)
	}
	rc.l.mu.Unlock()
	rc.mu.Lock()
	pending := rc.pending
	rc.pending, rc.gone = nil, true
	rc.mu.Unlock()
	return pending, was
}

// Cancel implements broker.Forwarder: the owner is told (after any
// settle queued before), and deliveries not yet taken go back to it.
func (f *Forwarder) Cancel(q *broker.Queue, c broker.Consumer) {
	f.mu.Lock()
	rc := f.byQC[qc{q, c}]
	f.mu.Unlock()
	if rc == nil {
		return
	}
	pending, _ := f.forget(rc)
	seen := rc.seen()
	l := rc.l
	l.mu.Lock()
	if ids := idsOf(pending); len(ids) > 0 {
		l.addOpLocked(ctlOp{Op: opRequeue, Consumer: rc.id, IDs: ids})
	}
	l.addOpLocked(ctlOp{Op: opCancel, Consumer: rc.id, Seen: seen})
	delete(l.credit, rc.id)
	l.kickLocked()
	l.mu.Unlock()
}

// seen is the last delivery id this node received for rc (or found
// lost); once rc is forgotten it no longer moves.
func (rc *remoteConsumer) seen() uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.next - 1
}

func idsOf(ds []broker.Delivery) []uint64 {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uint64, len(ds))
	for i, d := range ds {
		ids[i] = d.Seq
	}
	return ids
}

// Dispatch implements broker.Forwarder: q's consumers here take what
// waits for them.
func (f *Forwarder) Dispatch(q *broker.Queue) {
	f.mu.Lock()
	list := append([]*remoteConsumer(nil), f.byQueue[q]...)
	f.mu.Unlock()
	for _, rc := range list {
		rc.drain()
	}
}

// drain offers pending deliveries to the local consumer, in order, until
// it refuses one (none before the owner accepted the consume: a consume
// that fails must have delivered nothing); what it took is credit, and a no-ack consumer's (or a
// delivery settled at once) an ack, for the owner.
func (rc *remoteConsumer) drain() {
	var acks []uint64
	rc.mu.Lock()
	before := rc.released
	n := 0
	for n < len(rc.pending) && !rc.gone && rc.open {
		d := rc.pending[n]
		v := rc.c.TryDeliver(d)
		if v == broker.Refuse {
			break
		}
		n++
		rc.released++
		if rc.noAck || v == broker.TakeSettled {
			acks = append(acks, d.Seq)
		}
	}
	if n > 0 {
		clear(rc.pending[:n])
		rc.pending = rc.pending[n:]
		if len(rc.pending) == 0 {
			rc.pending = nil
		}
	}
	released := rc.released
	rc.mu.Unlock()
	if len(acks) == 0 && (released == before || !rc.credit) {
		return
	}
	l := rc.l
	l.mu.Lock()
	if len(acks) > 0 {
		l.addOpLocked(ctlOp{Op: opAck, Consumer: rc.id, IDs: acks})
	}
	if rc.credit && released != before {
		l.credit[rc.id] = released
	}
	l.kickLocked()
	l.mu.Unlock()
}

// Settle implements broker.Forwarder: the settles join the next control
// request to q's node, by delivery id.
func (f *Forwarder) Settle(q *broker.Queue, op broker.SettleOp, ds []broker.Delivery) {
	var wop byte
	switch op {
	case broker.SettleAck:
		wop = opAck
	case broker.SettleRequeue:
		wop = opRequeue
	case broker.SettleReject:
		wop = opReject
	default:
		return
	}
	l := f.link(q.Node())
	l.mu.Lock()
	for start := 0; start < len(ds); {
		end := start + 1
		for end < len(ds) && ds[end].RemoteConsumer() == ds[start].RemoteConsumer() {
			end++
		}
		c := ds[start].RemoteConsumer()
		if c == 0 {
			l.gets = max(0, l.gets-(end-start))
		}
		l.addOpLocked(ctlOp{Op: wop, Consumer: c, IDs: idsOf(ds[start:end])})
		start = end
	}
	l.kickLocked()
	l.mu.Unlock()
}

// Closed implements broker.Forwarder: q was deleted; its consumers here
// are forgotten and returned to be told.
func (f *Forwarder) Closed(q *broker.Queue) []broker.Consumer {
	f.mu.Lock()
	list := append([]*remoteConsumer(nil), f.byQueue[q]...)
	f.mu.Unlock()
	l := f.link(q.Node())
	l.mu.Lock()
	delete(l.counts, q)
	l.mu.Unlock()
	var out []broker.Consumer
	for _, rc := range list {
		if _, was := f.forget(rc); was {
			out = append(out, rc.c)
			rc.l.mu.Lock()
			rc.l.addOpLocked(ctlOp{Op: opCancel, Consumer: rc.id, Seen: rc.seen()})
			delete(rc.l.credit, rc.id)
			rc.l.kickLocked()
			rc.l.mu.Unlock()
		}
	}
	return out
}

// handleDeliver takes pushed deliveries for this node's consumers: each
// joins its consumer's pending list (a gap in the ids is deliveries the
// transport lost, which go back to the owner) and the consumer takes
// what it can. A delivery for a consumer that is gone goes back too.
func (f *Forwarder) handleDeliver(from uint64, body []byte) error {
	epoch, ds, err := decodeDeliver(body)
	if err != nil {
		return err
	}
	if epoch != f.epoch {
		return nil // for an earlier run of this node: its owner session ends on its own
	}
	f.stats.delivReceived.Add(uint64(len(ds)))
	l := f.link(from)
	var touched []*remoteConsumer
	var back []ctlOp
	for i := range ds {
		d := &ds[i]
		if d.ID == 0 || d.ID == math.MaxUint64 {
			continue // ids run from 1; these no owner sends
		}
		l.mu.Lock()
		rc := l.consumers[d.Consumer]
		l.mu.Unlock()
		if rc == nil {
			back = append(back, ctlOp{Op: opRequeue, Consumer: d.Consumer, IDs: []uint64{d.ID}})
			continue
		}
		m, err := message.DecodeMessage(bytes.Clone(d.Rec))
		rc.mu.Lock()
		switch {
		case rc.gone:
			back = append(back, ctlOp{Op: opRequeue, Consumer: d.Consumer, IDs: []uint64{d.ID}})
		case d.ID < rc.next:
			// a duplicate: already had
		default:
			if lost := rc.lostUpToLocked(d.ID - 1); lost != nil {
				back = append(back, *lost)
				if rc.credit {
					back = append(back, ctlOp{Op: opCredit, Consumer: rc.id, Released: rc.released})
				}
			}
			rc.next = d.ID + 1
			if err != nil {
				// Undecodable: treat it as lost, so the owner keeps it.
				rc.released++
				back = append(back, ctlOp{Op: opRequeue, Consumer: d.Consumer, IDs: []uint64{d.ID}})
				f.log.Warn("cluster forward: a delivered message does not decode; returned", "peer", from, "err", err)
				break
			}
			rc.pending = append(rc.pending, broker.NewRemoteDelivery(rc.q, m, d.ID, rc.id, d.Redelivered, int(d.Remaining)))
			if len(touched) == 0 || touched[len(touched)-1] != rc {
				touched = append(touched, rc)
			}
		}
		rc.mu.Unlock()
	}
	if len(back) > 0 {
		l.mu.Lock()
		for _, op := range back {
			l.addOpLocked(op)
		}
		l.kickLocked()
		l.mu.Unlock()
	}
	for _, rc := range touched {
		rc.drain()
	}
	return nil
}

// maxLost bounds the ids one gap may name; a larger one is a broken
// consumer (or a forged notify), dropped whole.
const maxLost = 1 << 16

// lostUpToLocked accounts ids next…upTo as lost (the owner pushed them,
// the transport dropped them) and returns the opLost that gives them back,
// or nil when there is no gap.
func (rc *remoteConsumer) lostUpToLocked(upTo uint64) *ctlOp {
	if upTo < rc.next || upTo == math.MaxUint64 {
		return nil
	}
	n := upTo - rc.next + 1
	if n > maxLost {
		n = maxLost
	}
	ids := make([]uint64, 0, n)
	for id := rc.next; id <= upTo && uint64(len(ids)) < n; id++ {
		ids = append(ids, id)
	}
	rc.released += uint64(len(ids))
	rc.next = upTo + 1
	rc.l.f.stats.delivLost.Add(uint64(len(ids)))
	return &ctlOp{Op: opLost, Consumer: rc.id, IDs: ids}
}

// handleCancelled: the owner removed a consumer (its queue was deleted
// there, or the owner ended this node's session); the local consumer is
// told.
func (f *Forwarder) handleCancelled(from uint64, body []byte) error {
	epoch, id, err := decodeCancelled(body)
	if err != nil || epoch != f.epoch {
		return err
	}
	l := f.link(from)
	l.mu.Lock()
	rc := l.consumers[id]
	l.mu.Unlock()
	if rc != nil {
		f.drop(rc)
	}
	return nil
}

// drop forgets rc because its owner has no consumer for it any more and
// tells the local consumer.
func (f *Forwarder) drop(rc *remoteConsumer) {
	if _, was := f.forget(rc); was {
		rc.c.Cancelled(rc.q)
	}
}

func encodeStreamOptions(o broker.StreamOptions) []byte {
	t := map[string]any{}
	if o.Offset != nil {
		t["offset"] = o.Offset
	}
	if len(o.Filters) > 0 {
		fs := make([]any, len(o.Filters))
		for i, s := range o.Filters {
			fs[i] = s
		}
		t["filters"] = fs
	}
	if o.MatchUnfiltered {
		t["match-unfiltered"] = true
	}
	if o.Name != "" {
		t["name"] = o.Name
	}
	return message.AppendTable(nil, t)[4:]
}

func decodeStreamOptions(raw []byte) (broker.StreamOptions, error) {
	var o broker.StreamOptions
	if len(raw) == 0 {
		return o, nil
	}
	t, err := message.DecodeTable(raw)
	if err != nil {
		return o, err
	}
	o.Offset = t["offset"]
	if fs, ok := t["filters"].([]any); ok {
		for _, v := range fs {
			if s, ok := v.(string); ok {
				o.Filters = append(o.Filters, s)
			}
		}
	}
	o.MatchUnfiltered, _ = t["match-unfiltered"].(bool)
	o.Name, _ = t["name"].(string)
	return o, nil
}
