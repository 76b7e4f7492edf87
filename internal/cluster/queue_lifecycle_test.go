package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// publishFanout publishes to exchange x through bn with a confirm and
// returns how many queues it routed to and its confirm's error.
func publishFanout(t *testing.T, bn *brokerNode, x string) (int, error) {
	t.Helper()
	done := make(confirms, 1)
	m := &message.Message{Exchange: x, Body: []byte("broadcast"), Props: message.Properties{DeliveryMode: 2}}
	res, err := bn.b.VHost("/").Publish(&broker.RouteScratch{}, m, done, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending == 0 {
		return res.Routed, nil
	}
	select {
	case c := <-done:
		return res.Routed, c.err
	case <-time.After(30 * time.Second):
		t.Fatal("no confirm")
	}
	return 0, nil
}

func queueNames(bn *brokerNode) []string {
	var out []string
	for _, q := range bn.b.VHost("/").Queues() {
		out = append(out, q.Name())
	}
	slices.Sort(out)
	return out
}

// user7 2.2: a node cut off from the others (down, as far as the metadata
// leader can tell) keeps its transient queues bound, and every confirmed
// publish a fanout routes to one is nacked, while it is down (a Celery
// worker's pidbox broadcast). After the grace period the majority deletes
// the node's exclusive and non-durable queues, and keeps its durable one;
// the fanout confirms again. Back, the node applies the deletes and
// cancels the consumer it had on one of them.
func TestDownNodesTransientQueuesAreDeleted(t *testing.T) {
	nodes := startBrokerCluster(t, 3, func(c *Config) { c.DownGrace = 2 * time.Second; c.ProposalTimeout = time.Second })
	down, n1 := nodes[2], nodes[0]
	dv := down.b.VHost("/")
	for _, cfg := range []broker.QueueConfig{{Name: "pidbox", AutoDelete: true}, {Name: "durable", Durable: true}} {
		if _, err := dv.DeclareQueue(cfg, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dv.DeclareQueue(broker.QueueConfig{Name: "excl", Durable: true, Exclusive: true}, false, 7); err != nil {
		t.Fatal(err)
	}
	v1 := n1.b.VHost("/")
	if _, err := v1.DeclareQueue(broker.QueueConfig{Name: "live"}, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v1.DeclareExchange(broker.ExchangeConfig{Name: "bcast", Type: "fanout"}, false); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"pidbox", "live"} {
		if err := v1.BindQueue(q, "bcast", "", nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	all := []string{"durable", "excl", "live", "pidbox"}
	for _, bn := range nodes {
		waitUntil(t, 10*time.Second, bn.cfg.Self.Name+" to know every queue", func() bool { return slices.Equal(queueNames(bn), all) })
	}
	c := newChanConsumer()
	if err := down.queue(t, "pidbox").Consume(c, broker.ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	if routed, err := publishFanout(t, n1, "bcast"); routed != 2 || err != nil {
		t.Fatalf("broadcast with every node up: routed %d, %v", routed, err)
	}

	heal := cut(nodes, down)
	want := []string{"durable", "live"}
	for _, bn := range nodes[:2] {
		waitUntil(t, 30*time.Second, bn.cfg.Self.Name+" to delete the down node's transient queues", func() bool {
			return slices.Equal(queueNames(bn), want)
		})
	}
	if routed, err := publishFanout(t, nodes[1], "bcast"); routed != 1 || err != nil {
		t.Fatalf("broadcast with the down node's transient queue deleted: routed %d, %v", routed, err)
	}
	select {
	case <-c.cancelled:
		t.Fatal("the cut-off node cancelled its consumer before it learnt of the delete")
	default:
	}

	heal()
	waitUntil(t, 30*time.Second, "the node back to apply the deletes", func() bool { return slices.Equal(queueNames(down), want) })
	select {
	case <-c.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer of a deleted transient queue was not cancelled")
	}
}

// user7 4.5: removing a node deletes the classic queues and streams it
// held (RabbitMQ's forget_cluster_node), durable or not, in RemoveNode:
// they would stay in the metadata for good and nack every publish routed
// to them. Quorum queues and other nodes' queues stay.
func TestRemovedNodesQueuesAreDeleted(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	gone, n1, n2 := nodes[2], nodes[0], nodes[1]
	gv := gone.b.VHost("/")
	for _, cfg := range []broker.QueueConfig{{Name: "session", Durable: true}, {Name: "transient"},
		{Name: "quorum", Durable: true, Args: map[string]any{"x-queue-type": "quorum"}}} {
		if _, err := gv.DeclareQueue(cfg, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n1.b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "kept", Durable: true}, false, 0); err != nil {
		t.Fatal(err)
	}
	all := []string{"kept", "quorum", "session", "transient"}
	waitUntil(t, 10*time.Second, "n2 to know every queue", func() bool { return slices.Equal(queueNames(n2), all) })
	if err := gone.node.Close(); err != nil { // dead when removed, as a replaced node is
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := n1.node.RemoveNode(ctx, gone.cfg.Self.Name); err != nil {
		t.Fatal(err)
	}
	want := []string{"kept", "quorum"}
	if got := queueNames(n1); !slices.Equal(got, want) {
		t.Fatalf("after RemoveNode returned, n1 has %v, want %v", got, want)
	}
	waitUntil(t, 10*time.Second, "n2 to apply the deletes", func() bool { return slices.Equal(queueNames(n2), want) })
	n1.publishUntilConfirmed(t, "quorum", "after", 30*time.Second)
}
