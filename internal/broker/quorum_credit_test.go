package broker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

func TestCheckoutCredit(t *testing.T) {
	for _, c := range []struct {
		prefetch int
		want     uint32
	}{{-1, 0}, {0, 0}, {1, 1}, {quorumAheadMin - 1, quorumAheadMin - 1}, {quorumAheadMin, 2 * quorumAheadMin}, {1000, 2000}, {1 << 31, 1<<32 - 1}} {
		if got := checkoutCredit(c.prefetch); got != c.want {
			t.Errorf("checkoutCredit(%d) = %d, want %d", c.prefetch, got, c.want)
		}
	}
}

// A consumer with a large prefetch is assigned a second prefetch's worth
// ahead, which its node holds: the client never has more than its
// prefetch unacked, and an ack lets the next message through at once,
// before the settlement has committed (the group is held).
func TestQuorumCreditAheadOfSettlements(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	prefetch := quorumAheadMin
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: prefetch}); err != nil {
		t.Fatal(err)
	}
	total := 2*prefetch + 50
	for i := range total {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	// The machine checked out twice the prefetch; the client has the prefetch.
	wantCounts(t, qs, total-2*prefetch, 2*prefetch, 1)
	if got := len(cons.deliveries()); got != prefetch {
		t.Fatalf("the consumer got %d, want its prefetch %d", got, prefetch)
	}
	release := c.f.hold()
	qs[2].Ack(cons.deliveries()[:10]...)
	ds := cons.deliveries()
	if len(ds) != prefetch+10 {
		release()
		t.Fatalf("after 10 acks with the settlement not applied the consumer has %d, want %d", len(ds), prefetch+10)
	}
	release()
	c.settle()
	wantCounts(t, qs, total-2*prefetch-10, 2*prefetch, 1)
	// Everything arrives in order, each message once.
	for len(cons.deliveries()) < total {
		n := len(cons.deliveries())
		qs[2].Ack(cons.deliveries()[n-prefetch:]...)
		c.settle()
		if len(cons.deliveries()) == n {
			t.Fatalf("stuck at %d of %d", n, total)
		}
	}
	want := make([]string, total)
	for i := range want {
		want[i] = fmt.Sprint("m", i)
	}
	if got := cons.bodies(); got != strings.Join(want, ",") {
		t.Fatalf("got %s", got)
	}
	c.sameState(qs)
}
