package broker

import (
	"math"

	"golang.org/x/time/rate"
)

// policyChanged acts on new effective arguments (policy_apply.go) as
// RabbitMQ's classic queue does when its policy changes
// (rabbit_amqqueue_process:process_args_policy): a lower max-length or
// max-length-bytes drops (or dead-letters) messages from the head at once
// under drop-head; the x-expires countdown restarts with the new value;
// x-deliver-rate paces from now on. A new message-ttl applies to messages
// enqueued from now on: those already in the queue keep the expiry they
// got when they were enqueued, as in RabbitMQ, whose queues compute a
// message's expiry at enqueue. It runs under the vhost's lock; the dead
// letters go out in what it returns, after that lock.
func (q *classicBackend) policyChanged() func() {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return nil
	}
	a := q.cur()
	switch r := a.deliverRate; {
	case r <= 0:
		if q.ex != nil {
			q.ex.pacer = nil
		}
	case q.pacerLocked() == nil:
		q.extraLocked().pacer = rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(r/50))))
	default:
		q.ex.pacer.SetLimit(rate.Limit(r))
		q.ex.pacer.SetBurst(max(1, int(math.Ceil(r/50))))
	}
	if a.expires > 0 {
		q.touchLocked()
	} else {
		q.stopUnusedTimerLocked()
	}
	now := q.nowNano()
	dead := q.enforceLimitsLocked(nil)
	dead = q.dispatchLocked(now, dead)
	q.armExpiryLocked()
	page := q.startPageInLocked()
	q.mu.Unlock()
	if len(dead) == 0 && !page {
		return nil
	}
	return func() {
		q.deadLetter(dead)
		if page {
			q.pageIn()
		}
	}
}
