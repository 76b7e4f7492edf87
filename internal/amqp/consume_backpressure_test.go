package amqp_test

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// A consumer that stops reading its socket must not make the broker buffer
// without bound: once the connection's outbox is full the queue keeps the
// messages, and they all arrive when the consumer reads again.
func TestSlowConsumerBackpressureKeepsMessagesInQueue(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)

	slow := s.DialRaw(t)
	slow.Handshake(0)
	slow.Send(1, &amqp091.BasicConsume{Queue: q, ConsumerTag: "slow", NoAck: true})
	if _, ok := slow.Expect().(*amqp091.BasicConsumeOk); !ok {
		t.Fatal("no consume-ok")
	}
	const n = 4000
	payload := make([]byte, 16<<10) // 64 MB in all, far past socket and outbox buffers
	for i := 0; i < n; i++ {
		publish(t, ch, "", q, body(string(payload)))
	}
	testkit.Eventually(t, 10*time.Second, "backlog held in the queue", func() bool { return queueLen(t, ch, q) > n/2 })

	_ = slow.NC.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := 0
	for got < n {
		f, err := slow.FR.ReadFrame()
		if err != nil {
			t.Fatalf("after %d deliveries: %v", got, err)
		}
		if c, m := amqp091.MethodIDs(f.Payload); f.Type == amqp091.FrameMethod && c == amqp091.ClassBasic && m == 60 {
			got++
		}
	}
	if queueLen(t, ch, q) != 0 {
		t.Fatal("messages left behind")
	}
}
