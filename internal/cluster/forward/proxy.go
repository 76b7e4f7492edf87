package forward

import (
	"slices"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
)

// proxy is, on the owner, a consumer of a client node registered on a
// local queue. What the queue delivers to it is pushed to the client node
// with the next id and stays unacked here until the client settles it by
// that id. It always consumes with acks, whatever the client's consumer
// does (a no-ack consumer's node acks what its consumer took), so nothing
// is lost in between. Its window: the client consumer's prefetch, counted
// on the unacked; without a prefetch (no-ack, or prefetch 0), Window
// deliveries the client node has not taken yet (its credit).
type proxy struct {
	s        *session
	id       uint64
	q        *broker.Queue
	prefetch int // 0: credit-based window
	window   uint64

	mu           sync.Mutex
	unacked      map[uint64]broker.Delivery
	pushed       uint64 // ids handed out so far (the last id)
	released     uint64 // the client node's credit: deliveries it is done with
	lastNotified uint64 // the last id handed to the transport
	cancelled    bool
}

// TryDeliver implements broker.Consumer; the queue's lock is held.
func (p *proxy) TryDeliver(d broker.Delivery) broker.Verdict {
	p.mu.Lock()
	if p.cancelled || !p.roomLocked() {
		p.mu.Unlock()
		return broker.Refuse
	}
	p.pushed++
	id := p.pushed
	p.unacked[id] = d
	// Pushed under p.mu, so a resend cannot slip its ids in between.
	p.s.push(pushItem{p: p, id: id, d: d})
	p.mu.Unlock()
	return broker.Take
}

func (p *proxy) roomLocked() bool {
	if p.prefetch > 0 {
		return len(p.unacked) < p.prefetch
	}
	return p.pushed-min(p.released, p.pushed) < p.window
}

// Cancelled implements broker.Consumer: the queue was deleted here. The
// client node is told; what the proxy held went with the queue.
func (p *proxy) Cancelled(*broker.Queue) {
	p.mu.Lock()
	p.cancelled = true
	clear(p.unacked)
	p.mu.Unlock()
	p.s.removeProxy(p)
	_ = p.s.f.tr.Notify(p.s.node, KindCancelled, appendCancelled(nil, p.s.epoch, p.id))
}

// notified records that delivery id went to the transport.
func (p *proxy) notified(id uint64) {
	p.mu.Lock()
	p.lastNotified = max(p.lastNotified, id)
	p.mu.Unlock()
}

// settle takes the deliveries ids names out of the unacked (ids it does
// not hold — settled already, or never — are skipped) and settles them;
// an emptied cancelled proxy is forgotten.
func (p *proxy) settle(op byte, ids []uint64) {
	p.mu.Lock()
	ds := make([]broker.Delivery, 0, len(ids))
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	for _, id := range sorted {
		if d, ok := p.unacked[id]; ok {
			delete(p.unacked, id)
			ds = append(ds, d)
		}
	}
	done := p.cancelled && len(p.unacked) == 0
	p.mu.Unlock()
	if done {
		p.s.removeProxy(p)
	}
	if len(ds) == 0 {
		return
	}
	switch op {
	case opAck:
		p.q.Ack(ds...)
	case opLost:
		if p.q.IsStream() {
			p.resend(ds)
			return
		}
		p.q.Requeue(ds)
	case opRequeue:
		p.q.Requeue(ds)
	case opReject:
		p.q.Reject(ds)
	}
	if p.prefetch == 0 || op != opAck {
		p.q.Dispatch()
	}
}

// resend pushes again, under new ids and marked redelivered, a stream's
// deliveries the transport lost: a stream's requeue puts nothing back and
// its reader has moved past them, so without this the client would never
// see them (as a queue's requeue, they come after what was pushed since).
// They take the place of the lost ids in the unacked and the credit the
// client node gave back for them, so the window is unchanged. A cancelled
// proxy sends nothing more: what it lost is gone, as for a local stream
// consumer that cancels.
func (p *proxy) resend(ds []broker.Delivery) {
	p.mu.Lock()
	if p.cancelled {
		p.mu.Unlock()
		return
	}
	for _, d := range ds {
		d.Redelivered = true
		p.pushed++
		p.unacked[p.pushed] = d
		p.s.push(pushItem{p: p, id: p.pushed, d: d})
	}
	p.mu.Unlock()
}

// credit records the client node's cumulative credit.
func (p *proxy) credit(released uint64) {
	p.mu.Lock()
	more := released > p.released
	if more {
		p.released = released
	}
	p.mu.Unlock()
	if more {
		p.q.Dispatch()
	}
}

// cancel is the client's basic.cancel: no more deliveries; what its
// consumer holds stays unacked until settled (or the session ends). What
// was pushed after seen, the last id the client's node received, never
// reached the consumer (lost, or still on its way, which the client's
// node gives back and finds settled): it goes back to the queue now,
// since no keepalive names a cancelled consumer to find the loss.
func (p *proxy) cancel(seen uint64) {
	p.mu.Lock()
	was := p.cancelled
	p.cancelled = true
	var lost map[uint64]broker.Delivery
	for id, d := range p.unacked {
		if id > seen {
			if lost == nil {
				lost = map[uint64]broker.Delivery{}
			}
			lost[id] = d
			delete(p.unacked, id)
		}
	}
	done := len(p.unacked) == 0
	p.mu.Unlock()
	if !was {
		p.q.Cancel(p)
	}
	if len(lost) > 0 {
		p.q.Requeue(sortedDeliveries(lost))
	}
	if done {
		p.s.removeProxy(p)
	}
}

// stop cancels the proxy and, with requeue, returns what it held to the
// queue; it returns how many that was.
func (p *proxy) stop(requeue bool) int {
	p.mu.Lock()
	was := p.cancelled
	p.cancelled = true
	held := p.unacked
	p.unacked = map[uint64]broker.Delivery{}
	p.mu.Unlock()
	if !was {
		p.q.Cancel(p)
	}
	if !requeue {
		return 0
	}
	ds := sortedDeliveries(held)
	if len(ds) > 0 {
		p.q.Requeue(ds)
	}
	return len(ds)
}
