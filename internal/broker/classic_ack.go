package broker

import (
	"slices"
)

// ack settles delivered messages for good, then delivers waiting messages
// to consumers whose prefetch the ack freed.
func (q *classicBackend) ack(ds []Delivery) {
	var dead []deadLetter
	q.mu.Lock()
	q.noteActive()
	for _, d := range ds {
		q.unacked--
		q.settle(d.Seq, d.Msg.Size(), true, d.persisted)
	}
	if q.readyCount > 0 && !q.deleted {
		dead = q.dispatchLocked(q.nowNano(), nil)
		q.armExpiryLocked()
	}
	q.vhost.broker.stats.acked.Add(uint64(len(ds)))
	q.extraLocked().stats.Acked += uint64(len(ds))
	q.unlockThen(dead)
}

// requeue returns delivered messages to the ready list in their original
// order, marked redelivered, and dispatches them again.
func (q *classicBackend) requeue(ds []Delivery, _ bool) {
	q.mu.Lock()
	q.noteActive()
	q.unacked -= len(ds)
	if q.deleted {
		// Nowhere to go back to: the messages are gone with the queue.
		for _, d := range ds {
			q.settle(d.Seq, d.Msg.Size(), true, d.persisted)
		}
		q.mu.Unlock()
		return
	}
	// Highest seq first: each lands at the front of its level, so the
	// batch ends up ascending, ahead of newer messages.
	slices.SortFunc(ds, func(a, b Delivery) int {
		switch {
		case a.Seq > b.Seq:
			return -1
		case a.Seq < b.Seq:
			return 1
		}
		return 0
	})
	for _, d := range ds {
		e := entry{msg: d.Msg, seq: d.Seq, expires: q.expiryFor(d.Msg), size: d.Msg.Size(),
			level: q.levelFor(d.Msg.Props.Priority), persisted: d.persisted, redelivered: true}
		q.levels[e.level].insertSorted(e)
		q.readyCount++
		q.readySize += e.size
		q.memBytes += e.size
	}
	dead := q.dispatchLocked(q.nowNano(), nil)
	q.armExpiryLocked()
	q.unlockThen(dead)
}

// reject settles delivered messages that a consumer refused without requeue:
// they are dead-lettered with reason "rejected" when the queue has a
// dead-letter exchange, and dropped otherwise.
func (q *classicBackend) reject(ds []Delivery) {
	var dead []deadLetter
	q.mu.Lock()
	q.noteActive()
	for _, d := range ds {
		q.unacked--
		q.settle(d.Seq, d.Msg.Size(), true, d.persisted)
		if q.cur().hasDLX {
			dead = append(dead, deadLetter{msg: d.Msg, reason: "rejected"})
		}
	}
	q.unlockThen(dead)
}
