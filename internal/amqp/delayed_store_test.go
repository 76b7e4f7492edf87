package amqp_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// Persistent messages waiting in a durable delayed-message exchange are
// stored; transient ones are not; deleting the exchange deletes its
// stored messages, so one declared again with the same name gets none of
// them back after a restart.
func TestDelayedMessagesStoredUntilTheirExchangeIsDeleted(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	declareLater := func(s *testkit.Server) *amqp.Channel {
		t.Helper()
		_, ch := s.Channel(t)
		if err := ch.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}); err != nil {
			t.Fatal(err)
		}
		return ch
	}
	ch := declareLater(s)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2))
	for _, mode := range []uint8{amqp.Persistent, amqp.Transient} {
		if err := ch.Publish("later", "k", false, false, amqp.Publishing{DeliveryMode: mode, Body: []byte("x"),
			Headers: amqp.Table{"x-delay": int32(600_000)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case cf := <-confirms:
			if !cf.Ack {
				t.Fatal("nack")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no confirm")
		}
	}
	pending := func(s *testkit.Server) int {
		n, ok := s.Broker.VHost("/").DelayedMessages("later")
		if !ok {
			t.Fatal("no delayed exchange \"later\"")
		}
		return n
	}
	if n := pending(s); n != 2 {
		t.Fatalf("%d messages waiting before the restart", n)
	}
	s = s.Restart(t)
	if n := pending(s); n != 1 {
		t.Fatalf("%d messages waiting after a restart, want the persistent one", n)
	}
	_, ch = s.Channel(t)
	if err := ch.ExchangeDelete("later", false, false); err != nil {
		t.Fatal(err)
	}
	declareLater(s) // the same name again, before the restart finds the records
	s = s.Restart(t)
	if n := pending(s); n != 0 {
		t.Fatalf("%d messages of a deleted exchange came back", n)
	}
}
