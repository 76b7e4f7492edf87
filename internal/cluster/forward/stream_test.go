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
