package amqp_test

import (
	"bytes"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// A client that stops sending heartbeats while its publish is held by the
// memory alarm is dropped after two heartbeat intervals, not when the alarm
// clears.
func TestSilentClientOfABlockedConnectionIsDropped(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MemoryHighWatermark = 64 << 10 })
	_, ch := s.Channel(t)
	_ = declare(t, ch, nil)
	r := s.DialRaw(t)
	rawHandshake(t, r, 1) // heartbeat 1 s, which this raw client never sends
	_, ballast := s.Channel(t)
	q := declare(t, ballast, nil)
	publish(t, ballast, "", q, amqp.Publishing{Body: bytes.Repeat([]byte("x"), 80<<10)})
	testkit.Eventually(t, wait, "the memory alarm", func() bool { return s.Broker.Stats().MemoryAlarm })
	r.Write(appendPublish(nil, 1, "", q, []byte("held"), false))
	testkit.Eventually(t, wait, "the publish to be held", func() bool { return s.AMQPStats().Blocked == 1 })
	start := time.Now()
	testkit.Eventually(t, 5*time.Second, "the silent client's connection to be dropped", func() bool {
		return s.AMQPStats().ConnectionsOpen == 2
	})
	t.Logf("dropped %v after the publish was held", time.Since(start))
	if n := queueLen(t, ch, q); n != 1 {
		t.Fatalf("%d messages in %s: the held publish must not be routed", n, q)
	}
}
