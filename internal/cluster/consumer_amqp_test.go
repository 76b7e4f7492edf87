package cluster

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/broker"
)

// The same through an AMQP client (amqp091-go, which advertises consumer
// cancel notifications): its consumer on a node that does not lead the
// quorum queue keeps receiving after the leader's node dies, with nothing
// marked redelivered, and gets basic.cancel when the queue is deleted
// through another node.
func TestQuorumAMQPConsumerAcrossLeaderLoss(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	if _, err := nodes[0].b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "tasks", Durable: true,
		Args: map[string]any{"x-queue-type": "quorum"}}, false, 0); err != nil {
		t.Fatal(err)
	}
	var leader string
	waitUntil(t, 15*time.Second, "the queue's leader", func() bool { leader = quorumLeader(nodes[0], "tasks"); return leader != "" })
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
	conn, err := amqp091.Dial(cons.serveAMQP(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_ = ch.Qos(10, 0, false)
	cancels := ch.NotifyCancel(make(chan string, 1))
	deliveries, err := ch.Consume("tasks", "worker", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := func(want string) {
		t.Helper()
		for {
			select {
			case d := <-deliveries:
				_ = d.Ack(false)
				if d.Redelivered {
					t.Fatalf("%s redelivered: the consumer's node never went away", d.Body)
				}
				if string(d.Body) == want {
					return
				}
				// a publish nacked at the leader change and sent again may
				// have been stored twice: an earlier body, once more
			case <-time.After(20 * time.Second):
				t.Fatalf("%s not delivered", want)
			}
		}
	}
	pub.publishUntilConfirmed(t, "tasks", "before", 10*time.Second)
	recv("before")
	if err := lead.node.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		body := fmt.Sprint("after-", i)
		pub.publishUntilConfirmed(t, "tasks", body, 30*time.Second)
		recv(body)
	}
	if _, err := pub.b.VHost("/").DeleteQueue("tasks", false, false, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "worker" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no basic.cancel after the queue was deleted")
	}
}
