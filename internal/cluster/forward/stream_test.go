package forward

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// A stream node 1 holds is read from node 2 from the offset asked for,
// with the consumer's prefetch as its credit.
func TestRemoteStreamConsumer(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "s", map[string]any{"x-queue-type": "stream"})
	var s broker.RouteScratch
	cf := newConfirms()
	const n = 12
	for i := range n {
		publish(t, ns[1], &s, "s", fmt.Sprintf("m%d", i), true, cf, uint64(i))
	}
	for i, err := range cf.wait(t, n, 5*time.Second) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	q2 := queueOf(t, ns[1], "s")
	c := newConsumer(3, false)
	opts := broker.ConsumeOptions{Prefetch: 3, Stream: broker.StreamOptions{Offset: "first", Name: "reader"}}
	if err := q2.Consume(c, opts); err != nil {
		t.Fatal(err)
	}
	for got := 0; got < n; {
		waitFor(t, 2*time.Second, "3 more", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 3 })
		q2.Ack(c.take()...)
		q2.Dispatch()
		got += 3
	}
	if g, _, _ := c.snapshot(); !slices.Equal(g, bodies("m", 0, n)) {
		t.Fatalf("stream read %v", g)
	}
	q2.Cancel(c)
}

// A stream's deliveries that the transport lost reach a reader on another
// node all the same (finding 1): a stream's requeue puts nothing back and
// its reader has moved past them, so the owner sends them again itself.
// Notify 2 is lost in the middle (the gap in ids finds it), notify 5 at
// the tail (the keepalive finds it).
func TestRemoteStreamLostDeliveriesComeBack(t *testing.T) {
	tweak, l := lossyOwner(map[int]bool{2: true}, nil)
	ns := newCluster(t, 2, tweak)
	declare(t, ns[0], "s", map[string]any{"x-queue-type": "stream"})
	q2 := queueOf(t, ns[1], "s")
	c := newConsumer(10, false)
	opts := broker.ConsumeOptions{Prefetch: 10, Stream: broker.StreamOptions{Offset: "first"}}
	if err := q2.Consume(c, opts); err != nil {
		t.Fatal(err)
	}
	var s broker.RouteScratch
	pub := func(body string) {
		cf := newConfirms()
		publish(t, ns[0], &s, "s", body, true, cf, 0)
		if err := cf.wait(t, 1, 2*time.Second)[0]; err != nil {
			t.Fatal(err)
		}
	}
	got := func(n int) func() bool {
		return func() bool { g, _, _ := c.snapshot(); return len(g) >= n }
	}
	pub("m1") // notify 1
	waitFor(t, 2*time.Second, "m1", c.ch, got(1))
	pub("m2") // notify 2: lost
	waitFor(t, 2*time.Second, "notify 2 sent", nil, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.n >= 2 })
	pub("m3") // notify 3: the gap gives m2 back, notify 4 (or a keepalive did first)
	waitFor(t, 3*time.Second, "m3 and m2", c.ch, got(3))
	l.mu.Lock()
	l.lose = map[int]bool{l.n + 1: true}
	l.mu.Unlock()
	pub("m4") // lost at the tail; a keepalive gives it back
	waitFor(t, 3*time.Second, "m4", c.ch, got(4))
	g, _, _ := c.snapshot()
	if sorted := slices.Sorted(slices.Values(g)); !slices.Equal(sorted, []string{"m1", "m2", "m3", "m4"}) {
		t.Fatalf("stream read %v, want m1 to m4 once each", g)
	}
	for _, d := range c.take() {
		body := string(d.Msg.Body)
		if lost := body == "m2" || body == "m4"; d.Redelivered != lost {
			t.Fatalf("%s redelivered %v", body, d.Redelivered)
		}
		q2.Ack(d)
	}
	q2.Cancel(c)
}
