package forward

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// Get implements broker.Forwarder: basic.get on the owner, waiting
// RequestTimeout at most. A delivery to ack is held on the owner by the
// node's session under an id this node chose (the get's, from the
// consumer ids' sequence), kept alive by keepalives until settled. When
// the reply does not come, the owner may have taken the message all the
// same: a requeue of that id gives it back (a no-op if it never took it,
// and a tombstone that refuses the get if it arrives later).
func (f *Forwarder) Get(q *broker.Queue, noAck bool) (broker.Delivery, bool, error) {
	l := f.link(q.Node())
	g := getReq{Epoch: f.epoch, Ref: refOf(q), NoAck: noAck}
	if !noAck {
		g.ID = f.nextConsumer.Add(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindGet, g.append(nil))
	cancel()
	var d delivery
	var found bool
	if err == nil {
		d, found, err = decodeGetReply(reply)
	}
	if err != nil {
		l.failed(err)
		f.log.Debug("forwarded basic.get failed", "node", l.node, "queue", q.Name(), "err", err)
		if !noAck {
			l.mu.Lock()
			l.addOpLocked(ctlOp{Op: opRequeue, Consumer: 0, IDs: []uint64{g.ID}})
			l.kickLocked()
			l.mu.Unlock()
		}
		return broker.Delivery{}, false, f.unreachable(q, err)
	}
	if !found {
		return broker.Delivery{}, false, nil
	}
	m, err := message.DecodeMessage(d.Rec)
	if err != nil {
		if !noAck {
			f.Settle(q, broker.SettleRequeue, []broker.Delivery{broker.NewRemoteDelivery(q, nil, g.ID, 0, false, 0)})
		}
		return broker.Delivery{}, false, nil
	}
	if !noAck {
		l.mu.Lock()
		if l.gets == 0 && len(l.consumers) == 0 {
			l.lastOK = f.cfg.Clock.Now()
		}
		l.gets++
		l.mu.Unlock()
	}
	return broker.NewRemoteDelivery(q, m, g.ID, 0, d.Redelivered, int(d.Remaining)), true, nil
}

// Purge implements broker.Forwarder.
func (f *Forwarder) Purge(q *broker.Queue) (int, error) {
	l := f.link(q.Node())
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindPurge, appendRef(nil, refOf(q)))
	cancel()
	if err == nil {
		var vs []uint64
		if vs, err = decodeUvarints(reply, 1); err == nil {
			return int(vs[0]), nil
		}
	}
	l.failed(err)
	f.log.Warn("forwarded queue.purge failed", "node", l.node, "queue", q.Name(), "err", err)
	return 0, f.unreachable(q, err)
}

// unreachable is the error of an operation on q whose node could not be
// asked or did not answer in time: RabbitMQ's for a classic queue whose
// node is down (404 NOT_FOUND, "home node … is down or inaccessible").
func (f *Forwarder) unreachable(q *broker.Queue, err error) error {
	return &broker.Error{Kind: broker.KindNotFound,
		Text: fmt.Sprintf("home node %s of queue '%s' in vhost '%s' is down or inaccessible",
			f.nodeName(q.Node()), q.Name(), q.VHost().Name()),
		Cause: err}
}

// nodeName is node's name for a client's error text (Config.NodeName),
// or its number when it has none.
func (f *Forwarder) nodeName(node uint64) string {
	if f.cfg.NodeName != nil {
		if name := f.cfg.NodeName(node); name != "" {
			return name
		}
	}
	return strconv.FormatUint(node, 10)
}

// countEntry is a remote queue's counts as last learnt.
type countEntry struct {
	q                         *broker.Queue
	ready, unacked, consumers int
	at                        time.Time // zero: never learnt
	wanted                    bool      // asked for since the last refresh
}

// Counts implements broker.Forwarder: the counts last learnt from the
// owner. One counts request per owner, for every queue of it asked about
// and older than CountsMaxAge, is out at a time, so listing many remote
// queues costs one request per owner, not one per queue; the first call
// for a queue of an owner also asks for every other queue this node knows
// it holds. That first call waits for the answer (RequestTimeout at most)
// unless the owner was found unreachable lately; until an answer the
// counts are 0.
func (f *Forwarder) Counts(q *broker.Queue) (ready, unacked, consumers int) {
	if q.VHost().QueueByID(q.Name(), q.ID()) != q {
		return 0, 0, 0 // deleted (Closed ran): an entry now would never go
	}
	l := f.link(q.Node())
	deadline := f.cfg.Clock.Now().Add(f.cfg.RequestTimeout)
	for try := 0; ; try++ {
		now := f.cfg.Clock.Now()
		l.mu.Lock()
		if len(l.counts) == 0 {
			l.mu.Unlock()
			l.seedCounts()
			l.mu.Lock()
		}
		e := l.counts[q]
		if e == nil {
			e = &countEntry{q: q}
			l.counts[q] = e
		}
		var wait chan struct{}
		if now.Sub(e.at) > f.cfg.CountsMaxAge && !now.Before(l.downUntil) {
			e.wanted = true
			if l.countsOut == nil {
				l.countsOut = make(chan struct{})
				go l.refreshCounts(l.countsOut)
			}
			if e.at.IsZero() {
				wait = l.countsOut
			}
		}
		ready, unacked, consumers = e.ready, e.unacked, e.consumers
		l.mu.Unlock()
		if wait == nil || try == 2 || !now.Before(deadline) {
			return ready, unacked, consumers
		}
		// The refresh out may have left before this queue was asked for:
		// wait for it, then (at most twice) for the next.
		select {
		case <-wait:
		case <-time.After(deadline.Sub(now)):
		}
	}
}

// seedCounts adds, wanted, every queue of the broker the link's node
// holds, so the first refresh learns them all in one request. It takes
// the broker's locks (VHosts) and so must be called without l.mu: the
// broker calls Closed, which takes l.mu, with a vhost's lock held.
func (l *link) seedCounts() {
	b := l.f.b.Load()
	if b == nil {
		return
	}
	var qs []*broker.Queue
	for _, v := range b.VHosts() {
		for _, q := range v.Queues() {
			if q.Node() == l.node && q.Remote() {
				qs = append(qs, q)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, q := range qs {
		if l.counts[q] == nil {
			l.counts[q] = &countEntry{q: q, wanted: true}
		}
	}
}

// refreshCounts asks the owner for the counts of every queue asked about
// since the last refresh, then closes done.
func (l *link) refreshCounts(done chan struct{}) {
	f := l.f
	defer func() {
		l.mu.Lock()
		l.countsOut = nil
		l.mu.Unlock()
		close(done)
	}()
	l.mu.Lock()
	var es []*countEntry
	for _, e := range l.counts {
		if e.wanted {
			e.wanted = false
			es = append(es, e)
		}
	}
	l.mu.Unlock()
	if len(es) == 0 {
		return
	}
	refs := make([]queueRef, len(es))
	for i, e := range es {
		refs[i] = refOf(e.q)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindCounts, appendRefs(nil, refs))
	cancel()
	var vs []uint64
	if err == nil {
		vs, err = decodeUvarints(reply, 3*len(es))
	}
	if err != nil {
		l.failed(err)
		return
	}
	now := f.cfg.Clock.Now()
	l.mu.Lock()
	for i, e := range es {
		e.ready, e.unacked, e.consumers = int(vs[3*i]), int(vs[3*i+1]), int(vs[3*i+2])
		e.at = now
	}
	l.mu.Unlock()
}

// maybeKeepalive sends this node's keepalive to the link's owner when it
// has consumers or unsettled gets there and none is out.
func (l *link) maybeKeepalive(now time.Time) {
	l.mu.Lock()
	if l.kaBusy || (len(l.consumers) == 0 && l.gets == 0) {
		l.mu.Unlock()
		return
	}
	l.kaBusy = true
	items := make([]kaItem, 0, len(l.consumers))
	var rcs []*remoteConsumer
	for _, rc := range l.consumers {
		rcs = append(rcs, rc)
	}
	l.mu.Unlock()
	for _, rc := range rcs {
		rc.mu.Lock()
		if rc.open {
			items = append(items, kaItem{Consumer: rc.id, Released: rc.released})
		}
		rc.mu.Unlock()
	}
	go l.keepalive(items)
}

// keepalive tells the owner this node's consumers live. The reply says,
// per consumer, whether the owner still has it — a consumer it dropped
// is cancelled here — and the last delivery id it handed to the
// transport: replies travel behind the deliveries on the one connection,
// so an id this node has not seen by then was lost and goes back.
// Without an answer for LeaseTimeout the owner has ended this node's
// session: every consumer on it is cancelled here.
func (l *link) keepalive(items []kaItem) {
	f := l.f
	defer func() {
		l.mu.Lock()
		l.kaBusy = false
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), max(f.cfg.KeepaliveInterval, f.cfg.RequestTimeout))
	reply, err := f.tr.Request(ctx, l.node, KindKeepalive, appendKeepalive(nil, f.epoch, items))
	cancel()
	var rs []kaReply
	if err == nil {
		rs, err = decodeKeepaliveReply(reply)
	}
	now := f.cfg.Clock.Now()
	if err != nil {
		l.failed(err)
		l.mu.Lock()
		gone := now.Sub(l.lastOK) > f.cfg.LeaseTimeout
		var rcs []*remoteConsumer
		if gone {
			for _, rc := range l.consumers {
				rcs = append(rcs, rc)
			}
			l.gets = 0
			l.ctl, l.credit = nil, map[uint64]uint64{}
		}
		l.mu.Unlock()
		if gone {
			f.log.Warn("cluster forward: the queues' node is unreachable; its consumers here are cancelled",
				"node", l.node, "consumers", len(rcs), "err", err)
		}
		for _, rc := range rcs {
			f.drop(rc)
		}
		return
	}
	l.mu.Lock()
	l.lastOK = now
	l.mu.Unlock()
	l.applyKeepaliveReply(rs)
}

// applyKeepaliveReply cancels the consumers the owner no longer has and
// gives back the deliveries it pushed that never arrived.
func (l *link) applyKeepaliveReply(rs []kaReply) {
	f := l.f
	var back []ctlOp
	for _, r := range rs {
		l.mu.Lock()
		rc := l.consumers[r.Consumer]
		l.mu.Unlock()
		if rc == nil {
			continue
		}
		if !r.Known {
			f.drop(rc)
			continue
		}
		rc.mu.Lock()
		if lost := rc.lostUpToLocked(r.LastNotified); lost != nil && !rc.gone {
			back = append(back, *lost)
			if rc.credit {
				back = append(back, ctlOp{Op: opCredit, Consumer: rc.id, Released: rc.released})
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
}
