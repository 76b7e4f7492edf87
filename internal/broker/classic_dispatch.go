package broker

import (
	"slices"
	"time"
)

type consumerReg struct {
	c     Consumer
	opts  ConsumeOptions
	order uint64
}

// consume registers c. It fails with ErrAccessRefused when the queue has an
// exclusive consumer, or when an exclusive consumer is asked for and others
// exist.
func (q *classicBackend) consume(c Consumer, opts ConsumeOptions) error {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return errorf(KindNotFound, "no queue '%s' in vhost '%s'", q.cfg.Name, q.vhost.name)
	}
	if q.exclusiveConsumer || (opts.Exclusive && len(q.consumers) > 0) {
		q.mu.Unlock()
		return errorf(KindAccessRefused, "queue '%s' in vhost '%s' in exclusive use", q.cfg.Name, q.vhost.name)
	}
	q.consumerN++
	reg := &consumerReg{c: c, opts: opts, order: q.consumerN}
	i, _ := slices.BinarySearchFunc(q.consumers, reg, func(a, b *consumerReg) int {
		if a.opts.Priority != b.opts.Priority {
			return b.opts.Priority - a.opts.Priority
		}
		return int(a.order - b.order)
	})
	q.consumers = slices.Insert(q.consumers, i, reg)
	q.exclusiveConsumer = q.exclusiveConsumer || opts.Exclusive
	q.hadConsumer = true
	q.stopUnusedTimerLocked()
	dead := q.dispatchLocked(q.nowNano(), nil)
	q.armExpiryLocked()
	q.unlockThen(dead)
	return nil
}

// cancel removes c. An auto-delete queue is deleted once its last consumer
// is gone.
func (q *classicBackend) cancel(c Consumer) {
	q.mu.Lock()
	i := slices.IndexFunc(q.consumers, func(r *consumerReg) bool { return r.c == c })
	if i < 0 {
		q.mu.Unlock()
		return
	}
	if q.consumers[i].opts.Exclusive {
		q.exclusiveConsumer = false
	}
	q.consumers = slices.Delete(q.consumers, i, i+1)
	autoDelete := q.cfg.AutoDelete && len(q.consumers) == 0 && q.hadConsumer && !q.deleted
	if len(q.consumers) == 0 {
		q.startUnusedTimerLocked()
	}
	// A single active consumer leaving hands over to the next one.
	dead := q.dispatchLocked(q.nowNano(), nil)
	q.unlockThen(dead)
	if autoDelete {
		q.vhost.deleteOwn(q.Queue, true)
	}
}

// dispatch delivers ready messages to consumers that can take them. A
// consumer calls it when its credit returns (acks, flow on, buffer drained).
func (q *classicBackend) dispatch() {
	q.mu.Lock()
	if q.readyCount == 0 {
		q.mu.Unlock()
		return
	}
	dead := q.dispatchLocked(q.nowNano(), nil)
	q.armExpiryLocked()
	q.unlockThen(dead)
}

// dispatchLocked hands ready messages to consumers until either runs out.
func (q *classicBackend) dispatchLocked(now int64, dead []deadLetter) []deadLetter {
	q.dropRefusedLocked()
	for q.readyCount > 0 && len(q.consumers) > 0 {
		lvl := q.headLocked()
		head := q.levels[lvl].front()
		if head.expires != 0 && head.expires <= now {
			dead = q.dropLocked(q.popLevelLocked(lvl), "expired", dead)
			continue
		}
		if head.msg == nil {
			if head.unreadable {
				e := q.popLevelLocked(lvl)
				q.settle(e.seq, e.size, false, e.persisted)
				continue
			}
			// The body is on disk: a page-in reads it without the lock
			// (classic_page.go) and dispatches again.
			q.pageWanted = true
			break
		}
		if pacer := q.pacerLocked(); pacer != nil {
			t := time.Unix(0, now)
			r := pacer.ReserveN(t, 1)
			if d := r.DelayFrom(t); d > 0 {
				r.CancelAt(t)
				q.armPaceLocked(d)
				break
			}
			if !q.tryDeliverLocked(head) {
				r.CancelAt(t)
				break
			}
		} else if !q.tryDeliverLocked(head) {
			break
		}
		q.popLevelLocked(lvl)
	}
	return dead
}

// armPaceLocked schedules the next paced delivery.
func (q *classicBackend) armPaceLocked(d time.Duration) {
	tm := q.extraLocked()
	if tm.paceTimer == nil {
		tm.paceTimer = q.vhost.broker.cfg.Clock.AfterFunc(d, q.dispatch)
		return
	}
	tm.paceTimer.Reset(d)
}

// tryDeliverLocked offers e to the consumers: the highest priority group
// first, round-robin within a group; only the first consumer with
// x-single-active-consumer.
func (q *classicBackend) tryDeliverLocked(e *entry) bool {
	n := len(q.consumers)
	if n == 0 {
		return false
	}
	if q.args.singleActive {
		n = 1
	}
	for start := 0; start < n; {
		end := start + 1
		for end < n && q.consumers[end].opts.Priority == q.consumers[start].opts.Priority {
			end++
		}
		size := end - start
		for k := 0; k < size; k++ {
			reg := q.consumers[start+int((q.rr+uint64(k))%uint64(size))]
			d := Delivery{Queue: q.Queue, Msg: e.msg, Seq: e.seq, Redelivered: e.redelivered, persisted: e.persisted, Remaining: q.readyCount}
			if v := reg.c.TryDeliver(d); v != Refuse {
				q.rr++
				q.countDeliveryLocked(e, reg.opts.NoAck || v == TakeSettled)
				return true
			}
		}
		start = end
	}
	return false
}
