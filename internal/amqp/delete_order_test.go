package amqp_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// queue.delete-ok goes out no later than the basic.cancel it causes, so a
// client that closes once its consumer is cancelled still gets the reply
// (amqplib's suite). Durable queues fsync definitions in between, which made
// the cancel lead by milliseconds.
func TestQueueDeleteOkPrecedesConsumerCancel(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, durable := range []bool{true, false} {
		r := s.DialRaw(t)
		rawHandshake(t, r, 0)
		r.Send(1, &amqp091.QueueDeclare{Queue: "deleted-under-consumer", Durable: durable})
		if _, ok := r.Expect().(*amqp091.QueueDeclareOk); !ok {
			t.Fatal("no declare-ok")
		}
		r.Send(1, &amqp091.BasicConsume{Queue: "deleted-under-consumer", ConsumerTag: "c1"})
		if _, ok := r.Expect().(*amqp091.BasicConsumeOk); !ok {
			t.Fatal("no consume-ok")
		}
		r.Send(1, &amqp091.QueueDelete{Queue: "deleted-under-consumer"})
		if m := r.Expect(); m.Name() != (&amqp091.QueueDeleteOk{}).Name() {
			t.Fatalf("durable=%v: first reply %s, want queue.delete-ok", durable, m.Name())
		}
		if c, ok := r.Expect().(*amqp091.BasicCancel); !ok || c.ConsumerTag != "c1" {
			t.Fatalf("durable=%v: no basic.cancel for c1 after delete-ok", durable)
		}
	}
}
