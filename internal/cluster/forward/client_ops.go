package forward

import (
	"context"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// Get implements broker.Forwarder: basic.get on the owner, waiting
// RequestTimeout at most. A delivery to ack is the node's "get" consumer
// (id 0) on the owner, kept alive by keepalives until settled.
func (f *Forwarder) Get(q *broker.Queue, noAck bool) (broker.Delivery, bool) {
	l := f.link(q.Node())
	g := getReq{Epoch: f.epoch, Ref: refOf(q), NoAck: noAck}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindGet, g.append(nil))
	cancel()
	if err != nil {
		l.failed(err)
		f.log.Debug("forwarded basic.get failed", "node", l.node, "queue", q.Name(), "err", err)
		return broker.Delivery{}, false
	}
	d, found, err := decodeGetReply(reply)
	if err != nil || !found {
		return broker.Delivery{}, false
	}
	m, err := message.DecodeMessage(d.Rec)
	if err != nil {
		if !noAck {
			f.Settle(q, broker.SettleRequeue, []broker.Delivery{broker.NewRemoteDelivery(q, nil, d.ID, 0, false, 0)})
		}
		return broker.Delivery{}, false
	}
	if !noAck {
		l.mu.Lock()
		if l.gets == 0 && len(l.consumers) == 0 {
			l.lastOK = f.cfg.Clock.Now()
		}
		l.gets++
		l.mu.Unlock()
	}
	return broker.NewRemoteDelivery(q, m, d.ID, 0, d.Redelivered, int(d.Remaining)), true
}

// Purge implements broker.Forwarder.
func (f *Forwarder) Purge(q *broker.Queue) int {
	l := f.link(q.Node())
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindPurge, appendRef(nil, refOf(q)))
	cancel()
	if err == nil {
		var vs []uint64
		if vs, err = decodeUvarints(reply, 1); err == nil {
			return int(vs[0])
		}
	}
	l.failed(err)
	f.log.Warn("forwarded queue.purge failed", "node", l.node, "queue", q.Name(), "err", err)
	return 0
}

// countEntry is a remote queue's counts as last learnt.
type countEntry struct {
	ready, unacked, consumers int
	at                        time.Time // zero: never learnt
	busy                      bool      // a refresh is out
}

// Counts implements broker.Forwarder: the counts last learnt from the
// owner, refreshed in the background when older than CountsMaxAge. The
// first call for a queue waits for them (RequestTimeout at most) unless
// the owner was found unreachable lately; until an answer they are 0.
func (f *Forwarder) Counts(q *broker.Queue) (ready, unacked, consumers int) {
	now := f.cfg.Clock.Now()
	l := f.link(q.Node())
	l.mu.Lock()
	down := now.Before(l.downUntil)
	l.mu.Unlock()
	f.mu.Lock()
	e := f.counts[q]
	if e == nil {
		e = &countEntry{}
		f.counts[q] = e
	}
	stale := !e.busy && now.Sub(e.at) > f.cfg.CountsMaxAge && !down
	first := e.at.IsZero()
	if stale {
		e.busy = true
	}
	r, u, c := e.ready, e.unacked, e.consumers
	f.mu.Unlock()
	if !stale {
		return r, u, c
	}
	if first {
		f.refreshCounts(q, l, e)
		f.mu.Lock()
		defer f.mu.Unlock()
		return e.ready, e.unacked, e.consumers
	}
	go f.refreshCounts(q, l, e)
	return r, u, c
}

func (f *Forwarder) refreshCounts(q *broker.Queue, l *link, e *countEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.RequestTimeout)
	reply, err := f.tr.Request(ctx, l.node, KindCounts, appendRef(nil, refOf(q)))
	cancel()
	var vs []uint64
	if err == nil {
		vs, err = decodeUvarints(reply, 3)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e.busy = false
	if err != nil {
		l.failed(err)
		return
	}
	e.ready, e.unacked, e.consumers = int(vs[0]), int(vs[1]), int(vs[2])
	e.at = f.cfg.Clock.Now()
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
