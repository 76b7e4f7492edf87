package amqp_test

import (
	"bytes"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// A client silent for two heartbeat intervals while its publish is held by
// an alarm is dead (spec 4.2.7): the silence is timed by the broker's clock,
// so a fake clock moved past two minutes ends a connection with a 60 s
// heartbeat at once — on the real clock the test would wait two minutes.
func TestSilentClientOfABlockedConnectionClosedByTheClock(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t, func(c *config.Config) { c.MemoryHighWatermark = 64 << 10 })
	_, ballast := s.Channel(t)
	q := declare(t, ballast, nil)
	r := s.DialRaw(t)
	r.Handshake(60)
	// Raise the memory alarm with one 80 KiB message over the watermark.
	publish(t, ballast, "", q, amqp.Publishing{Body: bytes.Repeat([]byte("x"), 80<<10)})
	testkit.Eventually(t, wait, "the memory alarm", func() bool { return s.Broker.Stats().MemoryAlarm })
	r.Write(appendPublish(nil, 1, "", q, []byte("held"), false))
	testkit.Eventually(t, wait, "the raw client's publish held", func() bool { return s.AMQPStats().Blocked == 1 })
	if n := s.AMQPStats().ConnectionsOpen; n != 2 {
		t.Fatalf("%d connections open before the heartbeat timeout, want 2", n)
	}
	clk.Advance(2*time.Minute + time.Second)
	testkit.Eventually(t, wait, "the silent client's connection closed", func() bool { return s.AMQPStats().ConnectionsOpen == 1 })
}
