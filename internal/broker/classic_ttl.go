package broker

import "time"

// expireHeadsLocked drops expired messages at the head of each level.
// Like RabbitMQ's classic queues, only heads are examined: a message behind a
// longer-lived one expires when it reaches the head.
func (q *classicBackend) expireHeadsLocked(now int64, dead []deadLetter) []deadLetter {
	for i := range q.levels {
		for q.levels[i].len() > 0 {
			h := q.levels[i].front()
			if h.expires == 0 || h.expires > now {
				break
			}
			dead = q.dropLocked(q.popLevelLocked(i), "expired", dead)
		}
	}
	return dead
}

// armExpiryLocked sets a timer for the earliest head expiry so expired
// messages leave (and are dead-lettered) even when nobody consumes.
func (q *classicBackend) armExpiryLocked() {
	var next int64
	for i := range q.levels {
		if q.levels[i].len() > 0 {
			if e := q.levels[i].front().expires; e != 0 && (next == 0 || e < next) {
				next = e
			}
		}
	}
	if next == 0 || q.deleted || (q.ex != nil && q.ex.expiryTimer != nil && q.ex.expiryAt != 0 && q.ex.expiryAt <= next) {
		return
	}
	tm := q.extraLocked()
	tm.expiryAt = next
	d := time.Duration(next - q.nowNano())
	if tm.expiryTimer == nil {
		tm.expiryTimer = q.vhost.broker.cfg.Clock.AfterFunc(max(d, 0), q.onExpiryTimer)
	} else {
		tm.expiryTimer.Reset(max(d, 0))
	}
}

func (q *classicBackend) onExpiryTimer() {
	q.mu.Lock()
	q.ex.expiryAt = 0 // set: the timer was armed through it
	now := q.nowNano()
	dead := q.expireHeadsLocked(now, nil)
	dead = q.dispatchLocked(now, dead)
	q.armExpiryLocked()
	q.unlockThen(dead)
}

// touchLocked records use of the queue (declare, basic.get) for x-expires.
func (q *classicBackend) touchLocked() {
	if q.cur().expires > 0 && len(q.consumers) == 0 {
		q.startUnusedTimerLocked()
	}
}

// touch records use of the queue (a redeclare) for x-expires.
func (q *classicBackend) touch() {
	q.mu.Lock()
	q.touchLocked()
	q.mu.Unlock()
}

// startUnusedTimerLocked (re)starts the x-expires countdown.
func (q *classicBackend) startUnusedTimerLocked() {
	if q.cur().expires <= 0 || q.deleted {
		return
	}
	tm := q.extraLocked()
	tm.unusedGen++
	gen := tm.unusedGen
	if tm.unusedTimer != nil {
		tm.unusedTimer.Stop()
	}
	tm.unusedTimer = q.vhost.broker.cfg.Clock.AfterFunc(q.cur().expires, func() {
		q.mu.Lock()
		stale := gen != tm.unusedGen || len(q.consumers) > 0 || q.deleted
		q.mu.Unlock()
		if !stale {
			q.vhost.deleteOwn(q.Queue, true)
		}
	})
}

func (q *classicBackend) stopUnusedTimerLocked() {
	if q.ex == nil {
		return // never started: no countdown to make stale
	}
	q.ex.unusedGen++
	if q.ex.unusedTimer != nil {
		q.ex.unusedTimer.Stop()
	}
}
