package broker

import (
	"time"

	"golang.org/x/time/rate"
)

// A queue's publish-rate policy (Tern's own key): the messages per second
// the queue takes from publishers. It is a token bucket on the queue,
// shared by every publisher, with flow's publish limits' default burst
// (a tenth of the rate, at least one): a message the bucket has no token
// for is still enqueued, and its publisher is told to hold off until the
// bucket has one (PublishResult.Hold), as the vhost and user limits of
// /api/limits make it do. Dead-lettered and delayed messages, which no
// client publishes, take tokens without being held.

// publishHold takes a token from the queue's publish-rate bucket and
// returns how long its publisher should wait; 0 without a publish-rate.
func (q *Queue) publishHold() time.Duration {
	l := q.pubLimit.Load()
	if l == nil {
		return 0
	}
	now := q.vhost.broker.cfg.Clock.Now()
	return l.ReserveN(now, 1).DelayFrom(now)
}

// setPublishRate replaces the queue's bucket when its publish-rate
// changed (0: none). v.mu is held.
func (q *Queue) setPublishRate(r float64) {
	old := q.pubLimit.Load()
	switch {
	case r <= 0:
		if old != nil {
			q.pubLimit.Store(nil)
		}
	case old == nil || float64(old.Limit()) != r:
		q.pubLimit.Store(rate.NewLimiter(rate.Limit(r), max(1, int(r/10))))
	}
}
