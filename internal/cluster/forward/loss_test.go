package forward

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// lossy wraps a transport and silently loses chosen deliver notifies:
// Notify reports success, as when a frame was queued on a connection that
// then died.
type lossy struct {
	transport.Transport
	mu    sync.Mutex
	n     int          // deliver notifies seen
	lose  map[int]bool // by 1-based number
	fails map[int]bool // these report an error instead
}

func (l *lossy) Notify(to transport.NodeID, kind uint8, body []byte) error {
	if kind == KindDeliver {
		l.mu.Lock()
		l.n++
		n := l.n
		lose, fail := l.lose[n], l.fails[n]
		l.mu.Unlock()
		if fail {
			return fmt.Errorf("test: notify %d refused: %w", n, transport.ErrUnreachable)
		}
		if lose {
			return nil
		}
	}
	return l.Transport.Notify(to, kind, body)
}

func lossyOwner(lose, fails map[int]bool) (func(*Config), *lossy) {
	l := &lossy{lose: lose, fails: fails}
	return func(c *Config) {
		if c.Self == 1 {
			l.Transport = c.Transport
			c.Transport = l
		}
	}, l
}

// A delivery lost at the tail is found by the keepalive (its reply says
// what the owner pushed) and comes back redelivered; one lost in the
// middle is found by the gap in ids and comes back too.
func TestLostDeliveriesComeBack(t *testing.T) {
	tweak, _ := lossyOwner(map[int]bool{2: true, 5: true}, nil)
	ns := newCluster(t, 2, tweak)
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(10, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	var s broker.RouteScratch
	got := func(n int) func() bool {
		return func() bool { g, _, _ := c.snapshot(); return len(g) >= n }
	}
	publish(t, ns[0], &s, "q", "m1", false, nil, 0) // notify 1
	waitFor(t, 2*time.Second, "m1", c.ch, got(1))
	publish(t, ns[0], &s, "q", "m2", false, nil, 0) // notify 2: lost at the tail
	waitFor(t, 3*time.Second, "m2 after a keepalive", c.ch, got(2))
	publish(t, ns[0], &s, "q", "m3", false, nil, 0) // notify 4 (3 was m2 again)
	waitFor(t, 2*time.Second, "m3", c.ch, got(3))
	g, _, _ := c.snapshot()
	if g[0] != "m1" || g[1] != "m2" || g[2] != "m3" {
		t.Fatalf("deliveries %v", g)
	}
	ds := c.take()
	if ds[0].Redelivered || !ds[1].Redelivered || ds[2].Redelivered {
		t.Fatalf("redelivered flags %v %v %v", ds[0].Redelivered, ds[1].Redelivered, ds[2].Redelivered)
	}
	q2.Ack(ds...)
	waitFor(t, 2*time.Second, "acked", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
}

// A delivery lost in the middle is found by the gap in the ids of the
// next one (keepalives are too rare here to find it) and comes back.
func TestLostDeliveryGap(t *testing.T) {
	tweak, l := lossyOwner(map[int]bool{2: true}, nil)
	ns := newCluster(t, 2, func(c *Config) {
		tweak(c)
		c.KeepaliveInterval, c.LeaseTimeout = 10*time.Second, 30*time.Second
	})
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(10, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	var s broker.RouteScratch
	publish(t, ns[0], &s, "q", "m1", false, nil, 0)
	waitFor(t, 2*time.Second, "m1", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == 1 })
	publish(t, ns[0], &s, "q", "m2", false, nil, 0) // lost
	waitFor(t, 2*time.Second, "notify 2 sent", nil, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.n == 2 })
	publish(t, ns[0], &s, "q", "m3", false, nil, 0)
	waitFor(t, 2*time.Second, "m3 and m2", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == 3 })
	ds := c.take()
	if string(ds[1].Msg.Body) != "m3" || string(ds[2].Msg.Body) != "m2" || !ds[2].Redelivered || ds[1].Redelivered {
		t.Fatalf("deliveries %s %s (redelivered %v)", ds[1].Msg.Body, ds[2].Msg.Body, ds[2].Redelivered)
	}
	q2.Ack(ds...)
	waitFor(t, 2*time.Second, "acked", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
	if st := ns[1].f.Stats(); st.DeliveriesLost != 1 || st.DeliveriesReceived != 3 || st.RemoteConsumers != 1 {
		t.Fatalf("client stats %+v", st)
	}
	if st := ns[0].f.Stats(); st.DeliveriesPushed != 4 || st.Sessions != 1 {
		t.Fatalf("owner stats %+v", st)
	}
}

// A notify the transport refuses is a loss like any other: the keepalive
// finds it and the delivery comes back, redelivered; the consumer stays.
func TestRefusedNotifyComesBack(t *testing.T) {
	tweak, _ := lossyOwner(nil, map[int]bool{2: true})
	ns := newCluster(t, 2, tweak)
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(10, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	var s broker.RouteScratch
	publish(t, ns[0], &s, "q", "m1", false, nil, 0)
	waitFor(t, 2*time.Second, "m1", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == 1 })
	publish(t, ns[0], &s, "q", "m2", false, nil, 0) // refused
	waitFor(t, 3*time.Second, "m2 again", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == 2 })
	ds := c.take()
	if string(ds[1].Msg.Body) != "m2" || !ds[1].Redelivered {
		t.Fatalf("second delivery %s redelivered %v", ds[1].Msg.Body, ds[1].Redelivered)
	}
	q2.Ack(ds...)
	waitFor(t, 2*time.Second, "acked", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
	if _, _, k := c.snapshot(); k != 0 {
		t.Fatalf("consumer cancelled %d times", k)
	}
	if st := ns[0].f.Stats(); st.NotifyRefused != 1 || st.SessionsEnded != 0 {
		t.Fatalf("owner stats %+v", st)
	}
}

// countingTransport counts requests by kind.
type countingTransport struct {
	transport.Transport
	mu sync.Mutex
	n  map[uint8]int
}

func (c *countingTransport) Request(ctx context.Context, to transport.NodeID, kind uint8, body []byte) ([]byte, error) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[uint8]int{}
	}
	c.n[kind]++
	c.mu.Unlock()
	return c.Transport.Request(ctx, to, kind, body)
}

func (c *countingTransport) count(kind uint8) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}
