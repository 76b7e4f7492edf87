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

// A persistent delayed message recovered after a restart keeps its due
// time: on the same (fake) clock it is routed exactly when its x-delay has
// passed since it was published, not counted again from the restart.
func TestDelayedMessageRecoveredWithItsDueTime(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t, testkit.WithDataDir(t.TempDir()))
	_, ch := s.Channel(t)
	if err := ch.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("due", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("due", "k", "later", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	publish(t, ch, "later", "k", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("x"),
		Headers: amqp.Table{"x-delay": int32(600_000)}})
	select {
	case cf := <-confirms:
		if !cf.Ack {
			t.Fatal("nack")
		}
	case <-time.After(wait):
		t.Fatal("no confirm")
	}
	clk.Advance(5 * time.Minute)
	s = s.Restart(t) // the same clock
	_, ch = s.Channel(t)
	// A due message is routed inside Advance: the queue's length right
	// after it is exact.
	clk.Advance(5*time.Minute - time.Millisecond)
	if n := queueLen(t, ch, "due"); n != 0 {
		t.Fatalf("%d messages routed before the 10-minute delay passed", n)
	}
	clk.Advance(time.Millisecond)
	if n := queueLen(t, ch, "due"); n != 1 {
		t.Fatalf("%d messages routed once the delay passed, want 1", n)
	}
	if n, _ := s.Broker.VHost("/").DelayedMessages("later"); n != 0 {
		t.Fatalf("%d messages still waiting after their due time", n)
	}
}
