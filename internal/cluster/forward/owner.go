package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// The owner side: forwarded operations run against this node's broker.

// handlePublish enqueues a batch of forwarded publishes, in order, and
// replies once every one is enqueued and, where its queue logs it,
// durable — or when ctx ends first, with an error the client's node
// turns into nacks. While one of this node's alarms (memory, disk) is
// on, it waits before enqueueing, as the alarm blocks this node's own
// publishers: the client's node queues what follows (MaxPendingBytes)
// and nacks beyond.
func (f *Forwarder) handlePublish(ctx context.Context, b *broker.Broker, body []byte) ([]byte, error) {
	items, err := decodePublish(body)
	if err != nil {
		return nil, err
	}
	if err := waitAlarms(ctx, b); err != nil {
		return nil, err
	}
	f.stats.pubServed.Add(uint64(len(items)))
	w := &pubWait{results: make([]byte, len(items)), waiting: 1, done: make(chan struct{})}
	var q *broker.Queue
	for i, it := range items {
		if i == 0 || it.ref != items[i-1].ref {
			q = f.lookup(b, it.ref)
		}
		switch {
		case q == nil:
			w.results[i] = outcomeDropped
			continue
		case q.Remote():
			// This node does not hold it (the nodes' metadata disagree
			// for a moment): refuse rather than forward again.
			w.results[i] = outcomeRejected
			continue
		}
		m, err := message.DecodeMessage(bytes.Clone(it.rec))
		if err != nil {
			w.results[i] = outcomeRejected
			continue
		}
		w.add()
		out, pending := q.Enqueue(m, w, uint64(i))
		switch out {
		case broker.Rejected:
			w.set(i, outcomeRejected)
		case broker.Dropped:
			w.set(i, outcomeDropped)
		}
		if !pending {
			w.Durable(uint64(i), nil)
		}
	}
	w.Durable(0, nil) // the guard taken above
	select {
	case <-w.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("forward: publishes not durable in time: %w", ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.results), nil
}

// pubWait is the Completion of one forwarded batch: it counts the
// outcomes still to come (one guard while the batch is being enqueued,
// so a fast commit cannot finish it early).
type pubWait struct {
	mu      sync.Mutex
	results []byte
	waiting int
	done    chan struct{}
}

func (w *pubWait) add() {
	w.mu.Lock()
	w.waiting++
	w.mu.Unlock()
}

func (w *pubWait) set(i int, o byte) {
	w.mu.Lock()
	w.results[i] = o
	w.mu.Unlock()
}

// Durable implements message.Completion.
func (w *pubWait) Durable(token uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && token < uint64(len(w.results)) {
		w.results[token] = outcomeRejected
	}
	w.waiting--
	if w.waiting == 0 {
		close(w.done)
	}
}

// handleConsume registers a proxy consumer for the client node's consumer.
func (f *Forwarder) handleConsume(b *broker.Broker, from uint64, body []byte) ([]byte, error) {
	req, err := decodeConsume(body)
	if err != nil {
		return nil, err
	}
	opts := broker.ConsumeOptions{Exclusive: req.Exclusive, Priority: int(req.Priority), Prefetch: int(min(req.Prefetch, 1<<31))}
	if opts.Stream, err = decodeStreamOptions(req.Stream); err != nil {
		return nil, err
	}
	q := f.lookup(b, req.Ref)
	if q == nil || q.Remote() {
		return appendStatus(nil, uint64(broker.KindNotFound),
			fmt.Sprintf("no queue '%s' in vhost '%s' on node %d", req.Ref.Name, req.Ref.VHost, f.cfg.Self)), nil
	}
	s := f.sessionFor(from, req.Epoch, sessionCreate)
	if s == nil {
		return nil, errors.New("forward: node shutting down")
	}
	p := &proxy{s: s, id: req.Consumer, q: q, window: uint64(f.cfg.Window), unacked: map[uint64]broker.Delivery{}}
	if !req.NoAck && req.Prefetch > 0 {
		p.prefetch = opts.Prefetch
	}
	s.mu.Lock()
	if _, ok := s.cancelled[p.id]; ok {
		s.mu.Unlock()
		return appendStatus(nil, uint64(broker.KindResourceError),
			fmt.Sprintf("consumer %d of node %d was cancelled before its consume arrived", p.id, from)), nil
	}
	if s.ended || s.proxies[p.id] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("forward: consumer %d of node %d exists", p.id, from)
	}
	s.proxies[p.id] = p
	s.mu.Unlock()
	if err := q.Consume(p, opts); err != nil {
		s.removeProxy(p)
		var be *broker.Error
		if errors.As(err, &be) {
			return appendStatus(nil, uint64(be.Kind), be.Text), nil
		}
		return appendStatus(nil, uint64(broker.KindResourceError), err.Error()), nil
	}
	return appendStatus(nil, 0, ""), nil
}

// handleControl applies a client node's settles, credits and cancels, in
// order. Operations for consumers this session does not have (ended,
// or of an earlier run) are no-ops.
func (f *Forwarder) handleControl(from uint64, body []byte) ([]byte, error) {
	epoch, ops, err := decodeControl(body)
	if err != nil {
		return nil, err
	}
	mode := sessionFind
	for _, op := range ops {
		if op.Op == opCancel || op.Op == opAbort || (op.Consumer == 0 && op.Op == opRequeue) {
			mode = sessionIfNone // a tombstone needs a session
		}
	}
	s := f.sessionFor(from, epoch, mode)
	if s == nil {
		return nil, nil
	}
	for _, op := range ops {
		if op.Consumer == 0 {
			s.settleGets(op)
			continue
		}
		s.mu.Lock()
		p := s.proxies[op.Consumer]
		if p == nil && (op.Op == opCancel || op.Op == opAbort) {
			s.tombLocked(op.Consumer)
		}
		s.mu.Unlock()
		if p == nil {
			continue
		}
		switch op.Op {
		case opCredit:
			p.credit(op.Released)
		case opCancel:
			p.cancel(op.Seen)
		case opAbort:
			p.stop(true)
			s.removeProxy(p)
		default:
			p.settle(op.Op, op.IDs)
		}
	}
	return nil, nil
}

// settleGets settles the client node's basic.get deliveries. A requeue of
// an id not held is a get whose reply the client never had: if that get
// is still on its way, the tombstone left here refuses it.
func (s *session) settleGets(op ctlOp) {
	var ds []broker.Delivery
	s.mu.Lock()
	for _, id := range op.IDs {
		if d, ok := s.gets[id]; ok {
			delete(s.gets, id)
			ds = append(ds, d)
		} else if op.Op == opRequeue {
			s.tombLocked(id)
		}
	}
	s.mu.Unlock()
	settleByQueue(ds, func(q *broker.Queue, run []broker.Delivery) {
		switch op.Op {
		case opAck:
			q.Ack(run...)
		case opRequeue, opLost:
			q.Requeue(run)
		case opReject:
			q.Reject(run)
		}
	})
}

// handleGet is basic.get; a delivery to ack is held by the session.
func (f *Forwarder) handleGet(b *broker.Broker, from uint64, body []byte) ([]byte, error) {
	g, err := decodeGet(body)
	if err != nil {
		return nil, err
	}
	q := f.lookup(b, g.Ref)
	if q == nil || q.Remote() {
		return appendBool(nil, false), nil
	}
	var s *session
	if !g.NoAck {
		if s = f.sessionFor(from, g.Epoch, sessionCreate); s == nil {
			return appendBool(nil, false), nil
		}
		s.mu.Lock()
		held, dup := s.gets[g.ID]
		_, late := s.cancelled[g.ID]
		s.mu.Unlock()
		switch {
		case dup:
			// The same request again (a duplicate on the network): the
			// same answer, not a second message under one id.
			return getReply(g.ID, held), nil
		case late:
			// The client gave up on this get and gave its id back first.
			return appendBool(nil, false), nil
		}
	}
	d, ok := q.Get(g.NoAck)
	if !ok {
		return appendBool(nil, false), nil
	}
	if s != nil {
		s.mu.Lock()
		_, late := s.cancelled[g.ID]
		if held, dup := s.gets[g.ID]; dup || late || s.ended {
			s.mu.Unlock()
			q.Requeue([]broker.Delivery{d})
			if dup {
				return getReply(g.ID, held), nil
			}
			return appendBool(nil, false), nil
		}
		s.gets[g.ID] = d
		s.mu.Unlock()
	}
	return getReply(g.ID, d), nil
}

func getReply(id uint64, d broker.Delivery) []byte {
	out := delivery{ID: id, Redelivered: d.Redelivered, Remaining: uint64(max(d.Remaining, 0)), Rec: message.AppendMessage(nil, d.Msg)}
	return out.appendBody(appendBool(nil, true))
}

func (f *Forwarder) handlePurge(b *broker.Broker, body []byte) ([]byte, error) {
	r, err := decodeRef(body)
	if err != nil {
		return nil, err
	}
	q := f.lookup(b, r)
	if q == nil || q.Remote() {
		return appendUvarint(nil, 0), nil
	}
	return appendUvarint(nil, uint64(q.Purge())), nil
}

func (f *Forwarder) handleCounts(b *broker.Broker, body []byte) ([]byte, error) {
	refs, err := decodeRefs(body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3*len(refs))
	for _, r := range refs {
		var ready, unacked, consumers int
		if q := f.lookup(b, r); q != nil && !q.Remote() {
			ready, unacked, consumers = q.Counts()
		}
		out = appendUvarint(out, uint64(max(ready, 0)))
		out = appendUvarint(out, uint64(max(unacked, 0)))
		out = appendUvarint(out, uint64(max(consumers, 0)))
	}
	return out, nil
}

// handleKeepalive renews the client node's lease, takes its consumers'
// credit and answers, per consumer, whether it is still here and the last
// delivery id handed to the transport (read after the notifies carrying
// them were queued, so the reply travels behind them).
func (f *Forwarder) handleKeepalive(from uint64, body []byte) ([]byte, error) {
	epoch, items, err := decodeKeepalive(body)
	if err != nil {
		return nil, err
	}
	s := f.sessionFor(from, epoch, sessionFind)
	rs := make([]kaReply, len(items))
	for i, it := range items {
		rs[i].Consumer = it.Consumer
		if s == nil {
			continue
		}
		s.mu.Lock()
		p := s.proxies[it.Consumer]
		s.mu.Unlock()
		if p == nil {
			continue
		}
		p.mu.Lock()
		rs[i].Known = !p.cancelled
		rs[i].LastNotified = p.lastNotified
		p.mu.Unlock()
		if p.prefetch == 0 {
			p.credit(it.Released)
		}
	}
	return appendKeepaliveReply(nil, rs), nil
}

// waitAlarms returns once none of b's alarms is on, or with ctx's error.
func waitAlarms(ctx context.Context, b *broker.Broker) error {
	for _, a := range b.Alarms() {
		if !a.Active() {
			continue
		}
		off := make(chan struct{}, 1)
		unsubscribe := a.Subscribe(func(active bool) {
			if !active {
				select {
				case off <- struct{}{}:
				default:
				}
			}
		})
		for a.Active() {
			select {
			case <-off:
			case <-ctx.Done():
				unsubscribe()
				return fmt.Errorf("forward: the %s alarm is on: %w", a.Name(), ctx.Err())
			}
		}
		unsubscribe()
	}
	return nil
}
