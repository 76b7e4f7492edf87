package forward

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// chaos wraps a transport: a fraction of deliver notifies is lost
// silently, and a fraction of requests fails, half before being sent and
// half after (the reply lost), as a dropping connection does.
type chaos struct {
	transport.Transport
	mu  sync.Mutex
	rnd *rand.Rand
	p   float64
}

func (c *chaos) roll() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.Float64()
}

func (c *chaos) Notify(to transport.NodeID, kind uint8, body []byte) error {
	if kind == KindDeliver && c.roll() < c.p {
		return nil
	}
	return c.Transport.Notify(to, kind, body)
}

func (c *chaos) Request(ctx context.Context, to transport.NodeID, kind uint8, body []byte) ([]byte, error) {
	r := c.roll()
	if r < c.p/2 {
		return nil, fmt.Errorf("chaos: not sent: %w", transport.ErrUnreachable)
	}
	reply, err := c.Transport.Request(ctx, to, kind, body)
	if r < c.p {
		return nil, fmt.Errorf("chaos: reply lost: %w", transport.ErrUnreachable)
	}
	return reply, err
}

// Under lost deliveries and failing requests in both directions, every
// confirmed message reaches the consumer on node 2 (at least once), and
// the owner ends with nothing ready and nothing unacked: no message is
// stuck with a consumer that will never settle it.
func TestChaosNoConfirmedMessageLost(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ns := newCluster(t, 2, func(c *Config) {
		c.Transport = &chaos{Transport: c.Transport, rnd: rand.New(rand.NewPCG(seed, c.Self)), p: 0.08}
		c.LeaseTimeout = 2 * time.Second // several keepalives may fail in a row
	})
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(20, false)
	// The consume itself may fail (its reply lost): the client's node then
	// cancels whatever the owner registered, and the client tries again.
	for try := 0; ; try++ {
		err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 20})
		if err == nil {
			break
		}
		if try == 10 {
			t.Fatal(err)
		}
	}
	// The consumer acks what it gets, requeueing one in ten.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(seed, 99))
		for {
			select {
			case <-stop:
				return
			case <-c.ch:
			case <-time.After(5 * time.Millisecond):
			}
			for _, d := range c.take() {
				if rnd.IntN(10) == 0 {
					q2.Requeue([]broker.Delivery{d})
				} else {
					q2.Ack(d)
				}
			}
			q2.Dispatch()
		}
	}()
	const n = 2000
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range n {
		publish(t, ns[1], &s, "q", fmt.Sprintf("%05d", i), i%2 == 0, cf, uint64(i))
		if i%100 == 99 {
			cf.wait(t, i+1, 10*time.Second)
		}
	}
	outcomes := cf.wait(t, n, 10*time.Second)
	confirmed := map[string]bool{}
	for i, err := range outcomes {
		if err == nil {
			confirmed[fmt.Sprintf("%05d", i)] = true
		}
	}
	received := func() map[string]bool {
		g, _, _ := c.snapshot()
		m := make(map[string]bool, len(g))
		for _, b := range g {
			m[b] = true
		}
		return m
	}
	waitFor(t, 20*time.Second, "every confirmed message delivered and the owner drained", nil, func() bool {
		got := received()
		for b := range confirmed {
			if !got[b] {
				return false
			}
		}
		r, u, _ := q1.Counts()
		return r == 0 && u == 0
	})
	close(stop)
	wg.Wait()
	_, _, cancels := c.snapshot()
	st1, st2 := ns[0].f.Stats(), ns[1].f.Stats()
	t.Logf("%d of %d confirmed; cancels %d; owner %+v; client %+v", len(confirmed), n, cancels, st1, st2)
	if len(confirmed) < n/2 {
		t.Fatalf("only %d of %d confirmed", len(confirmed), n)
	}
	if cancels != 0 {
		t.Fatalf("consumer cancelled %d times", cancels)
	}
}

// Publish requests fail at random, before or after reaching the owner:
// what the owner enqueued is still in publish order (some messages
// missing — nacked — never out of order, never twice), and every
// confirmed one is there.
func TestChaosPublishOrder(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ns := newCluster(t, 2, func(c *Config) {
		if c.Self == 2 {
			c.Transport = &chaos{Transport: c.Transport, rnd: rand.New(rand.NewPCG(seed, 2)), p: 0.1}
		}
	})
	declare(t, ns[0], "q", nil)
	const n = 3000
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range n {
		publish(t, ns[1], &s, "q", fmt.Sprintf("%05d", i), i%3 == 0, cf, uint64(i))
	}
	outcomes := cf.wait(t, n, 20*time.Second)
	q1 := queueOf(t, ns[0], "q")
	c := newConsumer(0, true)
	if err := q1.Consume(c, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the owner drained", c.ch, func() bool { r, _, _ := q1.Counts(); return r == 0 })
	g, _, _ := c.snapshot()
	if !slices.IsSorted(g) {
		t.Fatalf("the owner's queue is out of publish order")
	}
	have := map[string]bool{}
	for i, b := range g {
		if i > 0 && g[i-1] == b {
			t.Fatalf("%s enqueued twice", b)
		}
		have[b] = true
	}
	confirmed := 0
	for i, err := range outcomes {
		if err == nil {
			confirmed++
			if !have[fmt.Sprintf("%05d", i)] {
				t.Fatalf("confirmed %d is not in the queue", i)
			}
		}
	}
	t.Logf("%d confirmed, %d enqueued of %d; %+v", confirmed, len(g), n, ns[1].f.Stats())
}
