package flow

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tern-broker/tern/internal/clock"
)

// Limit is a publish rate limit (a token bucket: a sustained rate and a
// burst). It applies to the publishers of a vhost: all of them together, or
// one user, or each user separately; PerConnection splits it further into a
// bucket per connection.
type Limit struct {
	VHost string `json:"vhost" toml:"vhost"`
	// User is "" (the vhost's publishers share the bucket), "*" (a bucket
	// per user) or a user name.
	User          string  `json:"user,omitempty" toml:"user"`
	PerConnection bool    `json:"per_connection,omitempty" toml:"per_connection"`
	PublishRate   float64 `json:"publish_rate,omitempty" toml:"publish_rate"`   // messages/s; 0 = no limit
	PublishBurst  int     `json:"publish_burst,omitempty" toml:"publish_burst"` // default: rate/10, at least 1
	ByteRate      float64 `json:"publish_bytes_rate,omitempty" toml:"publish_bytes_rate"`
	ByteBurst     int     `json:"publish_bytes_burst,omitempty" toml:"publish_bytes_burst"` // default: 1 MiB
}

// Validate reports what is wrong with l.
func (l Limit) Validate() error {
	switch {
	case l.VHost == "":
		return errors.New("limit: vhost is required")
	case l.PublishRate < 0 || l.ByteRate < 0:
		return fmt.Errorf("limit for vhost %q: rates must not be negative", l.VHost)
	case l.PublishBurst < 0 || l.ByteBurst < 0:
		return fmt.Errorf("limit for vhost %q: bursts must not be negative", l.VHost)
	case l.PublishRate == 0 && l.ByteRate == 0:
		return fmt.Errorf("limit for vhost %q: set publish_rate or publish_bytes_rate", l.VHost)
	}
	return nil
}

// Limiter holds the publish limits and their buckets. Publishers call Reserve
// before each message; it returns how long they must hold off.
type Limiter struct {
	any   atomic.Bool // fast path: no limits at all
	clock clock.Clock // the buckets fill by this clock's time

	mu      sync.Mutex
	limits  []Limit
	buckets map[string]*buckets
}

type buckets struct{ msgs, bytes *rate.Limiter }

// NewLimiter returns a limiter with no limits whose buckets fill by c's
// time (nil: the system clock); publishers hold off with c.Sleep.
func NewLimiter(c clock.Clock) *Limiter {
	return &Limiter{clock: clock.Or(c), buckets: map[string]*buckets{}}
}

// Set replaces the limits (buckets start full).
func (lm *Limiter) Set(limits []Limit) error {
	for _, l := range limits {
		if err := l.Validate(); err != nil {
			return err
		}
	}
	lm.mu.Lock()
	lm.limits = append([]Limit(nil), limits...)
	lm.buckets = map[string]*buckets{}
	lm.mu.Unlock()
	lm.any.Store(len(limits) > 0)
	return nil
}

// Active reports whether any limit is set (Reserve may then ask a wait).
func (lm *Limiter) Active() bool { return lm.any.Load() }

// Limits returns the current limits.
func (lm *Limiter) Limits() []Limit {
	lm.mu.Lock()
	defer lm.mu.Unlock()
	return append([]Limit{}, lm.limits...) // [] rather than null in JSON
}

// Reserve takes one message of size bytes from every bucket that applies
// to the publisher and returns how long the publisher must wait before
// sending it on. Nothing is dropped: the caller waits (and stops reading
// its socket meanwhile, so TCP pushes back).
func (lm *Limiter) Reserve(vhost, user string, conn uint64, size int) time.Duration {
	if !lm.any.Load() {
		return 0
	}
	now := lm.clock.Now() // ReserveN with explicit times: rate follows the injected clock
	var wait time.Duration
	lm.mu.Lock()
	defer lm.mu.Unlock()
	for i, l := range lm.limits {
		if l.VHost != vhost || (l.User != "" && l.User != "*" && l.User != user) {
			continue
		}
		key := strconv.Itoa(i)
		if l.User == "*" {
			key += "\x00" + user
		}
		if l.PerConnection {
			key += "\x00" + strconv.FormatUint(conn, 10)
		}
		b := lm.buckets[key]
		if b == nil {
			b = &buckets{}
			if l.PublishRate > 0 {
				burst := l.PublishBurst
				if burst == 0 {
					burst = max(1, int(l.PublishRate/10))
				}
				b.msgs = rate.NewLimiter(rate.Limit(l.PublishRate), burst)
			}
			if l.ByteRate > 0 {
				burst := l.ByteBurst
				if burst == 0 {
					burst = 1 << 20
				}
				b.bytes = rate.NewLimiter(rate.Limit(l.ByteRate), burst)
			}
			lm.buckets[key] = b
		}
		if b.msgs != nil {
			wait = max(wait, b.msgs.ReserveN(now, 1).DelayFrom(now))
		}
		if b.bytes != nil {
			n := min(size, b.bytes.Burst()) // a message larger than the burst waits for a full bucket
			wait = max(wait, b.bytes.ReserveN(now, n).DelayFrom(now))
		}
	}
	return wait
}
