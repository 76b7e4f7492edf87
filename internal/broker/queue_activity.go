package broker

import (
	"sync"
	"sync/atomic"
)

// Queue activity, for the management API's once-a-second rate sampler:
// rather than locking every queue each second to find the few whose
// counts moved (a fleet's MQTT sessions are tens of thousands of idle
// queues), the sampler reads only the queues that noted a change since
// it last read them. A classic queue notes itself, under the lock it
// already holds, wherever its ready or unacked count or its message totals
// change (publish, delivery, ack, requeue, reject, a message leaving the
// ready list, recovery) and when it is deleted: the first change after a
// read appends it to the broker's list, later ones cost an atomic load.
// Nothing is noted until a sampler asks (TrackActivity), so a broker
// without one keeps no list.
//
// Other queues (quorum queues, streams, another node's queues) change
// their counts off this node's paths (a Raft group's apply, a peer's
// report): RateNoted is false for them and the sampler reads them every
// time, as before.

// The states of classicBackend.rateMark.
const (
	rateUnseen = iota // never noted nor read
	rateNoted         // in the activity list
	rateRead          // read by the sampler since its last note
)

// activity is the list of queues noted since the sampler last took it.
type activity struct {
	on atomic.Bool
	mu sync.Mutex
	qs []*Queue
}

// TrackActivity starts noting active queues and notes every existing
// one, so the sampler's first round reads them all.
func (b *Broker) TrackActivity() {
	if b.activity.on.Swap(true) {
		return
	}
	for _, v := range b.VHosts() {
		for _, q := range v.queues.all() {
			if c, ok := q.backend.(*classicBackend); ok {
				c.noteActive()
			} else {
				b.activity.add(q)
			}
		}
	}
}

// TakeActiveQueues appends to dst the queues noted since the last call
// and marks them read: a change from now on notes a queue again, so the
// caller reads their counts after this returns. A queue may be deleted
// (Live says).
func (b *Broker) TakeActiveQueues(dst []*Queue) []*Queue {
	a := &b.activity
	a.mu.Lock()
	n := len(dst)
	dst = append(dst, a.qs...)
	clear(a.qs)
	a.qs = a.qs[:0]
	a.mu.Unlock()
	for _, q := range dst[n:] {
		if c, ok := q.backend.(*classicBackend); ok {
			c.rateMark.Store(rateRead)
		}
	}
	return dst
}

func (a *activity) add(q *Queue) {
	a.mu.Lock()
	a.qs = append(a.qs, q)
	a.mu.Unlock()
}

// RateNoted reports whether the queue notes its own changes
// (TakeActiveQueues): a classic queue of this node. The sampler reads the
// others every time.
func (q *Queue) RateNoted() bool {
	_, ok := q.backend.(*classicBackend)
	return ok
}

// Live reports whether the queue is still its vhost's queue of its name
// (not deleted, with its vhost or alone).
func (q *Queue) Live() bool { return q.vhost.queue(q.cfg.Name) == q }

// noteActive puts the queue on the activity list unless it is there.
func (q *classicBackend) noteActive() {
	if q.rateMark.Load() == rateNoted {
		return
	}
	a := &q.vhost.broker.activity
	if !a.on.Load() || q.rateMark.Swap(rateNoted) == rateNoted {
		return
	}
	a.add(q.Queue)
}

// noteGone notes a deleted queue the sampler has read, so that it drops
// the queue's rates; one never read has none.
func (q *classicBackend) noteGone() {
	if q.rateMark.Load() == rateRead {
		q.noteActive()
	}
}
