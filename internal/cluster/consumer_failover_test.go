package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// A consumer of a quorum queue on a node that does not lead it stays
// attached when the leader's node dies, as RabbitMQ's do: once a new
// leader is elected, new publishes reach it; what it held unacked stays
// its own (its node is alive) and is acked through the new leader. When
// the queue is deleted, the consumer is told (basic.cancel).
func TestQuorumConsumerSurvivesItsLeadersLoss(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	args := map[string]any{"x-queue-type": "quorum"}
	if _, err := nodes[0].b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "orders", Durable: true, Args: args}, false, 0); err != nil {
		t.Fatal(err)
	}
	var leader string
	waitUntil(t, 15*time.Second, "the queue's leader", func() bool { leader = quorumLeader(nodes[0], "orders"); return leader != "" })
	var lead, cons, pub *brokerNode
	for _, bn := range nodes {
		switch {
		case bn.cfg.Self.Name == leader:
			lead = bn
		case cons == nil:
			cons = bn
		default:
			pub = bn
		}
	}
	c := newChanConsumer()
	q := cons.queue(t, "orders")
	if err := q.Consume(c, broker.ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		pub.publishUntilConfirmed(t, "orders", fmt.Sprint("before-", i), 10*time.Second)
	}
	var held []broker.Delivery
	for i := range 5 {
		d := c.next(t, 10*time.Second)
		if got, want := string(d.Msg.Body), fmt.Sprint("before-", i); got != want || d.Redelivered {
			t.Fatalf("delivery %d: %s (redelivered %v), want %s", i, got, d.Redelivered, want)
		}
		if i < 3 {
			q.Ack(d)
		} else {
			held = append(held, d) // unacked across the leader's loss
		}
	}

	// The queue goes idle and its group quiet (no ticks, no heartbeats);
	// then the leader's node dies: the quiet followers must notice.
	waitUntil(t, 20*time.Second, "the consumer's replica to go quiet", func() bool { return replica(cons, "orders").Status().Quiet })
	if err := lead.node.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		pub.publishUntilConfirmed(t, "orders", fmt.Sprint("after-", i), 30*time.Second)
	}
	waitUntil(t, 15*time.Second, "a new leader", func() bool {
		l := quorumLeader(cons, "orders")
		return l != "" && l != leader
	})
	q.Ack(held...)
	seen := map[string]int{}
	for len(seen) < 10 {
		d := c.next(t, 20*time.Second)
		b := string(d.Msg.Body)
		seen[b]++
		if b2 := "back-"; len(b) > len(b2) && b[:len(b2)] == b2 {
			t.Fatalf("%s before it was published", b)
		}
		if d.Redelivered {
			t.Fatalf("%s redelivered: the consumer's node never went away", b)
		}
		q.Ack(d)
	}
	for i := range 10 {
		if seen[fmt.Sprint("after-", i)] == 0 {
			t.Fatalf("after-%d not delivered: %v", i, seen)
		}
	}
	select {
	case <-c.cancelled:
		t.Fatal("the consumer was cancelled by a leader change")
	default:
	}

	// The node comes back and leadership is handed back to it (what
	// rebalance does once it has caught up; here at once, by the test): a
	// second leader change the consumer rides out.
	lead.restart(t)
	handBack(t, nodes, "orders", lead)
	for i := range 10 {
		pub.publishUntilConfirmed(t, "orders", fmt.Sprint("back-", i), 30*time.Second)
	}
	for i := range 10 {
		want := fmt.Sprint("back-", i)
		for {
			d := c.next(t, 20*time.Second)
			q.Ack(d)
			if b := string(d.Msg.Body); b == want {
				break
			} else if seen[b] == 0 {
				t.Fatalf("got %s, want %s", b, want) // a duplicate of a nacked publish may come first
			}
		}
	}

	// Deleting the queue (through another node) cancels the consumer.
	if _, err := pub.b.VHost("/").DeleteQueue("orders", false, false, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer of a deleted quorum queue was not cancelled")
	}
}

// handBack transfers leadership of the quorum queue's group to node to,
// from whichever node leads it, until to leads.
func handBack(t *testing.T, nodes []*brokerNode, queue string, to *brokerNode) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for quorumLeader(to, queue) != to.cfg.Self.Name {
		if time.Now().After(deadline) {
			t.Fatalf("leadership of %s not handed to %s", queue, to.cfg.Self.Name)
		}
		for _, bn := range nodes {
			bn.node.mu.Lock()
			var g *raftnode.Group
			for _, qg := range bn.node.queues {
				if qg.name == queue && qg.g.IsLeader() {
					g = qg.g
				}
			}
			bn.node.mu.Unlock()
			if g != nil && bn != to {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = g.TransferLeadership(ctx, to.node.ID())
				cancel()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A consumer on a node cut off from the rest for longer than an election
// timeout: the leader returns what it held (its node does not answer) and
// other consumers may take it; once the cut heals, the consumer is
// attached again and receives new publishes — not left silently idle.
func TestQuorumConsumerOnACutOffNodeResumes(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	if _, err := nodes[0].b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "jobs", Durable: true,
		Args: map[string]any{"x-queue-type": "quorum"}}, false, 0); err != nil {
		t.Fatal(err)
	}
	var leader string
	waitUntil(t, 15*time.Second, "the queue's leader", func() bool { leader = quorumLeader(nodes[0], "jobs"); return leader != "" })
	var cons, pub *brokerNode
	for _, bn := range nodes {
		if bn.cfg.Self.Name != leader && cons == nil {
			cons = bn
		} else if bn.cfg.Self.Name != leader {
			pub = bn
		}
	}
	c := newChanConsumer()
	q := cons.queue(t, "jobs")
	if err := q.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	pub.publishUntilConfirmed(t, "jobs", "held", 10*time.Second)
	held := c.next(t, 10*time.Second)

	heal := cut(nodes, cons)
	// The leader's liveness check returns what the cut-off consumer held;
	// a consumer on the publisher's node takes it.
	other := newChanConsumer()
	if err := pub.queue(t, "jobs").Consume(other, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	d := other.next(t, 20*time.Second)
	if string(d.Msg.Body) != "held" || !d.Redelivered {
		t.Fatalf("the other consumer got %s (redelivered %v), want held, redelivered", d.Msg.Body, d.Redelivered)
	}
	pub.queue(t, "jobs").Ack(d)
	pub.queue(t, "jobs").Cancel(other)
	q.Ack(held) // lost with the cut: the message went elsewhere

	heal()
	for i := range 5 {
		pub.publishUntilConfirmed(t, "jobs", fmt.Sprint("healed-", i), 30*time.Second)
	}
	got := map[string]bool{}
	for len(got) < 5 {
		d := c.next(t, 30*time.Second)
		q.Ack(d)
		got[string(d.Msg.Body)] = true
	}
	for i := range 5 {
		if !got[fmt.Sprint("healed-", i)] {
			t.Fatalf("healed-%d not delivered to the resumed consumer: %v", i, got)
		}
	}
	select {
	case <-c.cancelled:
		t.Fatal("the consumer was cancelled")
	default:
	}
}

// replica is bn's replica of the quorum queue's group.
func replica(bn *brokerNode, queue string) *raftnode.Group {
	bn.node.mu.Lock()
	defer bn.node.mu.Unlock()
	for _, qg := range bn.node.queues {
		if qg.name == queue {
			return qg.g
		}
	}
	return nil
}
