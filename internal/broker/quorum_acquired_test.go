package broker

import (
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// RabbitMQ 4.3 sends two counters on a quorum queue's redeliveries:
// x-delivery-count, the failed deliveries (basic.reject with requeue), and
// x-acquired-count, every earlier checkout however it ended (a plain
// requeue too). A first delivery carries neither.
func TestQuorumRedeliveryCarriesAcquiredCount(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.publish(3, "q", "m", message.Properties{Headers: map[string]any{"app": "x"}}, nil, 0)
	c.settle()
	qs[1].Requeue([]Delivery{cons.deliveries()[0]}) // basic.nack: not failed
	c.settle()
	qs[1].RequeueFailed([]Delivery{cons.deliveries()[1]}) // basic.reject: failed
	c.settle()
	ds := cons.deliveries()
	if len(ds) != 3 {
		t.Fatalf("deliveries %s", cons.bodies())
	}
	want := []struct{ delivery, acquired any }{{nil, nil}, {nil, int64(1)}, {int64(1), int64(2)}}
	for i, w := range want {
		h := ds[i].Msg.Props.Headers
		if h[HeaderDeliveryCount] != w.delivery || h[HeaderAcquiredCount] != w.acquired || h["app"] != "x" {
			t.Fatalf("delivery %d headers %v, want x-delivery-count %v x-acquired-count %v", i, h, w.delivery, w.acquired)
		}
	}
	qs[1].Ack(ds[2])
	c.settle()
	c.sameState(qs)
}
