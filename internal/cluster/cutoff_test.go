package cluster

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// cut partitions bn from every other node (both ways) and heal undoes it.
func cut(nodes []*brokerNode, bn *brokerNode) (heal func()) {
	for _, o := range nodes {
		if o != bn {
			bn.node.tr.RemovePeer(o.node.ID())
			o.node.tr.RemovePeer(bn.node.ID())
		}
	}
	return func() {
		for _, o := range nodes {
			if o != bn {
				bn.node.tr.SetPeer(o.node.ID(), o.cfg.Self.Addr)
				o.node.tr.SetPeer(bn.node.ID(), bn.cfg.Self.Addr)
			}
		}
	}
}

// A node cut off from the majority never confirms a publish: one to a
// quorum queue cannot commit (nacked once the proposal gives up), and one
// that its stale definitions route nowhere — to a queue the majority
// declared after the cut — is nacked, not confirmed as unroutable. Healed,
// the node learns the new queue and confirms again.
func TestCutOffNodeNeverConfirms(t *testing.T) {
	nodes := startBrokerCluster(t, 3, func(c *Config) { c.ProposalTimeout = time.Second })
	quorum := map[string]any{"x-queue-type": "quorum"}
	if _, err := nodes[0].b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "before", Durable: true, Args: quorum}, false, 0); err != nil {
		t.Fatal(err)
	}
	minority := nodes[2]
	waitUntil(t, 10*time.Second, "the minority node to have the queue", func() bool {
		return minority.b.VHost("/").LookupQueue("before") != nil && minority.node.MetadataCurrent()
	})
	heal := cut(nodes, minority)
	waitUntil(t, 15*time.Second, "the cut-off node to know it", func() bool { return !minority.node.MetadataCurrent() })

	// To a quorum queue it knows: no commit, a nack.
	res, done := minority.publish(t, "before", "during-cut")
	if res.Routed != 1 || res.Pending != 1 {
		t.Fatalf("publish to the quorum queue through the cut-off node: %+v", res)
	}
	select {
	case c := <-done:
		if c.err == nil {
			t.Fatal("a publish through a cut-off node was confirmed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a publish through a cut-off node was neither confirmed nor nacked")
	}

	// The majority declares a queue the cut-off node does not learn of.
	if _, err := nodes[0].b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "after", Durable: true, Args: quorum}, false, 0); err != nil {
		t.Fatal(err)
	}
	if minority.b.VHost("/").LookupQueue("after") != nil {
		t.Fatal("the cut-off node learnt of a queue declared after the cut")
	}
	if res, _ := minority.publish(t, "after", "stale"); res.Routed != 0 || !res.Rejected {
		t.Fatalf("an unroutable publish on a cut-off node: %+v, want rejected (a nack)", res)
	}

	heal()
	waitUntil(t, 30*time.Second, "the healed node to learn the new queue", func() bool {
		return minority.b.VHost("/").LookupQueue("after") != nil && minority.node.MetadataCurrent()
	})
	minority.publishUntilConfirmed(t, "after", "healed", 30*time.Second)
	minority.publishUntilConfirmed(t, "before", "healed", 30*time.Second)
	// Unroutable on a node with current definitions: confirmed, as before.
	if res, _ := minority.publish(t, "no-such-queue", "x"); res.Routed != 0 || res.Rejected {
		t.Fatalf("an unroutable publish on a healed node: %+v, want confirmed", res)
	}
}
