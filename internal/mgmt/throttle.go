package mgmt

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed-login throttling: each source address has a token bucket that a
// failed login drains; while it is empty the address is answered 429
// without a password check. Defaults: 10 failures in a burst, then one
// every 2 s — a person mistyping is never slowed, a guessing script gets
// 1,800 guesses an hour instead of argon2's few hundred a second.
const (
	failBurst   = 10
	failEvery   = 2 * time.Second
	maxTrackers = 4096 // addresses remembered at most
)

// throttle holds a token bucket per source address, at most max of them.
type throttle struct {
	mu    sync.Mutex
	byIP  map[string]*rate.Limiter
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time
}

func newThrottle(now func() time.Time) *throttle {
	if now == nil {
		now = time.Now
	}
	return &throttle{byIP: map[string]*rate.Limiter{}, limit: rate.Every(failEvery), burst: failBurst, max: maxTrackers, now: now}
}

// wait is how long host must wait before its credentials are checked
// again; 0 when it may try now.
func (t *throttle) wait(host string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.byIP[host]
	if l == nil {
		return 0
	}
	now := t.now()
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(t.limit) * float64(time.Second))
}

// fail records a failed login from host.
func (t *throttle) fail(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	l := t.byIP[host]
	if l == nil {
		if len(t.byIP) >= t.max {
			t.pruneLocked(now)
		}
		l = rate.NewLimiter(t.limit, t.burst)
		t.byIP[host] = l
	}
	l.AllowN(now, 1)
}

// pruneLocked forgets addresses whose bucket has refilled (forgetting them
// changes nothing) and, if all are still draining, an arbitrary half, so
// the map stays bounded under a spray of source addresses.
func (t *throttle) pruneLocked(now time.Time) {
	for h, l := range t.byIP {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.byIP, h)
		}
	}
	for h := range t.byIP {
		if len(t.byIP) < t.max/2 {
			break
		}
		delete(t.byIP, h)
	}
}

// tracked is how many addresses are remembered (for tests).
func (t *throttle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byIP)
}
