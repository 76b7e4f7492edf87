package cluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// user8 F1: a crashed node (its process gone: its cluster connections
// closed, its cluster port refusing) has its transient queues deleted at
// once, not after DownGrace, so a client that reconnects to a survivor
// redeclares its exclusive queue and gets its fanout publishes confirmed
// right away (a Celery worker's reply queue and pidbox). Its durable
// queue stays, and a consume of it names the node in the 404.
func TestCrashedNodesTransientQueuesGoAtOnce(t *testing.T) {
	const grace = time.Minute // the crash path must not need it
	nodes := startBrokerCluster(t, 3, func(c *Config) { c.DownGrace = grace; c.ProposalTimeout = time.Second })
	n1, dead := nodes[0], nodes[2]
	// The crashed node is not the metadata leader (whose crash adds an
	// election before anything can be deleted).
	waitUntil(t, 10*time.Second, "a metadata leader", func() bool { return metaLeader(n1) != "" })
	if metaLeader(n1) == dead.cfg.Self.Name {
		dead = nodes[1]
	}
	dv := dead.b.VHost("/")
	for _, cfg := range []broker.QueueConfig{{Name: "pidbox", AutoDelete: true}, {Name: "durable", Durable: true}} {
		if _, err := dv.DeclareQueue(cfg, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dv.DeclareQueue(broker.QueueConfig{Name: "reply", Exclusive: true}, false, 7); err != nil {
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
	all := []string{"durable", "live", "pidbox", "reply"}
	for _, bn := range nodes {
		waitUntil(t, 10*time.Second, bn.cfg.Self.Name+" to know every queue", func() bool { return slices.Equal(queueNames(bn), all) })
	}

	for _, bn := range nodes { // user8 F16: one name for the cluster
		if got := bn.node.ClusterName(); got != n1.cfg.Self.Name {
			t.Errorf("%s: cluster name %q, want %q (the first member's name)", bn.cfg.Self.Name, got, n1.cfg.Self.Name)
		}
	}

	killed := time.Now()
	if err := dead.node.Close(); err != nil { // its connections close and its port refuses, as after kill -9
		t.Fatal(err)
	}
	// A confirmed fanout publish in the moment after the crash, routed to
	// the dead node's pidbox, is confirmed once the pidbox is deleted
	// (forward holds it for that), not nacked.
	if routed, err := publishFanout(t, n1, "bcast"); routed < 1 || err != nil {
		t.Fatalf("broadcast right after the crash: routed %d, %v (want confirmed)", routed, err)
	}
	// The client of the dead node reconnects to n1 and redeclares its
	// exclusive reply queue until that is allowed (405 while the dead
	// node's queue is still there).
	waitUntil(t, 20*time.Second, "n1 to let the exclusive queue be redeclared", func() bool {
		_, err := v1.DeclareQueue(broker.QueueConfig{Name: "reply", Exclusive: true}, false, 9)
		var be *broker.Error
		if err != nil && !(errors.As(err, &be) && be.Kind == broker.KindResourceLocked) {
			t.Fatal(err)
		}
		return err == nil
	})
	took := time.Since(killed) // includes the publish's wait (about 1 s: forwarding waits for a connection first)
	if took > grace/4 {
		t.Fatalf("the exclusive queue was redeclared %v after the crash: the grace (%v), not the crash, released it", took, grace)
	}
	if q := v1.LookupQueue("reply"); q == nil || q.Node() != n1.node.ID() {
		t.Fatal("the redeclared exclusive queue is not n1's own")
	}
	waitUntil(t, 10*time.Second, "n1 to drop the dead node's pidbox", func() bool { return v1.LookupQueue("pidbox") == nil })
	if routed, err := publishFanout(t, n1, "bcast"); routed != 1 || err != nil {
		t.Fatalf("broadcast after the crash: routed %d, %v (want 1 queue, confirmed)", routed, err)
	}
	t.Logf("exclusive queue redeclared %v after the crash", took)

	// The durable queue stays with its node; a consume of it is refused
	// with the node's name.
	err := n1.queue(t, "durable").Consume(newChanConsumer(), broker.ConsumeOptions{Prefetch: 1})
	if err == nil || !strings.Contains(err.Error(), "home node "+dead.cfg.Self.Name+" of queue 'durable'") {
		t.Fatalf("consume of the dead node's durable queue: %v", err)
	}
}

// metaLeader is the metadata group's leader as from sees it ("" while none
// is known).
func metaLeader(from *brokerNode) string {
	for _, g := range from.node.Status().Groups {
		if g.Kind == "metadata" {
			return g.Leader
		}
	}
	return ""
}
