package cluster

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/broker"
)

// confirmOf publishes body to queue on ch (in confirm mode) and returns
// whether the broker acked it, and whether it came back as returned.
func confirmOf(t *testing.T, ch *amqp091.Channel, queue, body string, mandatory bool) (ack, returned bool) {
	t.Helper()
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	dc, err := ch.PublishWithDeferredConfirm("", queue, mandatory, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err = dc.WaitContext(ctx)
	if err != nil {
		t.Fatalf("publishing %s: %v", body, err)
	}
	select {
	case <-returns:
		returned = true
	default:
	}
	return ack, returned
}

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
	conn, err := amqp091.Dial(minority.serveAMQP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
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
	for _, mandatory := range []bool{false, true} {
		if ack, returned := confirmOf(t, ch, "after", "stale", mandatory); ack || returned {
			t.Fatalf("a publish its stale definitions route nowhere (mandatory %v): ack %v, returned %v; want a nack", mandatory, ack, returned)
		}
	}

	heal()
	waitUntil(t, 30*time.Second, "the healed node to learn the new queue", func() bool {
		return minority.b.VHost("/").LookupQueue("after") != nil && minority.node.MetadataCurrent()
	})
	minority.publishUntilConfirmed(t, "after", "healed", 30*time.Second)
	minority.publishUntilConfirmed(t, "before", "healed", 30*time.Second)
	// Unroutable on a node with current definitions: confirmed (and
	// returned if mandatory), as before.
	if ack, returned := confirmOf(t, ch, "no-such-queue", "x", true); !ack || !returned {
		t.Fatalf("an unroutable mandatory publish on a healed node: ack %v, returned %v; want both", ack, returned)
	}
}
