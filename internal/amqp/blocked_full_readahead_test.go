package amqp_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// A blocked client that dies with more in flight than the connection reads
// ahead (256 KiB) is dropped at once, although its FIN stands behind data
// the broker has not read: with heartbeats off nothing else would notice,
// and its exclusive queue stayed locked until the alarm cleared (seen by a
// review with pika sending 200 × 16 KiB and being killed).
func TestBlockedClientThatDiesWithMuchInFlightIsDropped(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MemoryHighWatermark = 64 << 10 })
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	r := s.DialRaw(t)
	rawHandshake(t, r, 0) // no heartbeats: only the socket tells
	r.Send(1, &amqp091.QueueDeclare{Queue: "dying-exclusive", Exclusive: true})
	if _, ok := r.Expect().(*amqp091.QueueDeclareOk); !ok {
		t.Fatal("no queue.declare-ok")
	}
	_, ballast := s.Channel(t)
	publish(t, ballast, "", declare(t, ballast, nil), amqp.Publishing{Body: bytes.Repeat([]byte("x"), 80<<10)})
	testkit.Eventually(t, wait, "the memory alarm", func() bool { return s.Broker.Stats().MemoryAlarm })

	// Publish until the socket pushes back: the broker's read-ahead and
	// both kernels' buffers are full.
	frame := appendPublish(nil, 1, "", q, bytes.Repeat([]byte("p"), 16<<10), false)
	pushedBack := false
	for i := 0; i < 4096 && !pushedBack; i++ { // at most 64 MiB
		_ = r.NC.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := r.NC.Write(frame); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			pushedBack = true
		}
	}
	if !pushedBack {
		t.Fatal("64 MiB written without TCP pushing back")
	}
	if got := s.AMQPStats().Blocked; got != 1 {
		t.Fatalf("%d blocked connections, want the dying client's", got)
	}
	// Read what the broker sent (connection.blocked), as a live client
	// would have, so the close sends a FIN — queued behind the unsent
	// publishes, which the broker's zero window keeps from ever leaving —
	// rather than a reset.
	_ = r.NC.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, _ = io.Copy(io.Discard, r.NC)
	_ = r.NC.Close()
	testkit.Eventually(t, 5*time.Second, "the dead client's connection to be closed", func() bool {
		return s.AMQPStats().ConnectionsOpen == 2
	})
	if _, err := ch.QueueDeclare("dying-exclusive", false, false, true, false, nil); err != nil {
		t.Fatalf("the dead client's exclusive queue is still locked: %v", err)
	}
	if n := queueLen(t, ch, q); n != 0 {
		t.Fatalf("%d of the dead client's publishes were routed", n)
	}
}
