package broker

import (
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// A consumer that leaves while the queue has no leader: its cancel waits
// for a leader, and meanwhile the machine still assigns new messages to it
// up to its credit. Another consumer takes the later messages first. When
// the cancel commits, what the gone consumer held goes back in its
// original place and must come out marked redelivered (RabbitMQ marks
// what a cancelled consumer returns): as first deliveries they would
// arrive after later messages of the same publisher (chaos seeds 114, 122
// and 137 failed `order` so).
func TestQuorumLateCancelReturnsMarkedRedelivered(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	a := &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 2}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.f.setLeader(0)
	c.settle()
	qs[1].Cancel(a) // no leader: the cancel waits for its retry
	c.settle()
	c.f.setLeader(1)
	c.settle()
	for i := range 4 {
		c.publish(2, "q", fmt.Sprintf("m%d", i), message.Properties{}, nil, 0)
	}
	c.settle()
	b := &qtaker{}
	if err := qs[1].Consume(b, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := b.bodies(); got != "m2,m3" {
		t.Fatalf("before the cancel committed, b got %q", got)
	}
	c.clk.Advance(quorumRetry)
	c.settle()
	if got := a.bodies(); got != "" {
		t.Fatalf("the cancelled consumer got %q", got)
	}
	if got := b.bodies(); got != "m2,m3,m0*,m1*" {
		t.Fatalf("b got %q, want m0 and m1 after the cancel, marked redelivered", got)
	}
	c.sameState(qs)
}

// A consume whose checkout is reported failed (lost in a leader change, as
// far as the proposer knows) proposes it again: the client gets consume-ok
// and its messages, not an error that closes its connection (506).
func TestQuorumConsumeRetriesACheckoutLostInALeaderChange(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	c.f.lie.Store(1) // the checkout commits, its proposer is told it failed
	a := &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatalf("consume: %v", err)
	}
	c.settle()
	if got := a.bodies(); got != "m" {
		t.Fatalf("the consumer got %q", got)
	}
	qs[1].Ack(a.deliveries()...)
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	c.sameState(qs)
}
