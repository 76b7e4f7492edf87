package chaos

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// away makes a consumer come and go while the workload runs: connected for
// 2-8 s, then away for 1-4 s, drawn from the seed and the consumer's name.
// Backlogs build up while it is away, so kills and torn tails find
// messages on disk, and deliveries in flight when it leaves are requeued.
// Once the workload is over (draining) it stays connected.
type away struct {
	r   *run
	rng *rand.Rand
}

func (r *run) newAway(name string) *away {
	h := fnv.New64a()
	h.Write([]byte("away " + name))
	return &away{r: r, rng: newRNG(r.sched.Seed, h.Sum64())}
}

// stay returns when to leave the next connection.
func (a *away) stay() <-chan time.Time {
	return time.After(time.Duration(2000+a.rng.IntN(6000)) * time.Millisecond)
}

// wait stays away, unless the workload is over.
func (a *away) wait(ctx context.Context) {
	d := time.Duration(1000+a.rng.IntN(3000)) * time.Millisecond
	if !a.r.draining.Load() {
		sleepCtx(ctx, d)
	}
}
