package amqp_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// RabbitMQ answers unbind-ok when the queue, the exchange or the binding is
// missing: there is nothing left to unbind. aio-pika's RPC close unbinds a
// reply queue that has already auto-deleted.
func TestUnbindOfMissingThingsIsOk(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if err := ch.ExchangeDeclare("x-present", "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"missing binding", func() error { return ch.QueueUnbind(q, "never-bound", "x-present", nil) }},
		{"missing queue", func() error { return ch.QueueUnbind("no-such-queue", "k", "x-present", nil) }},
		{"missing exchange", func() error { return ch.QueueUnbind(q, "k", "no-such-exchange", nil) }},
		{"missing exchange binding", func() error { return ch.ExchangeUnbind("x-present", "k", "amq.direct", false, nil) }},
		{"missing destination exchange", func() error { return ch.ExchangeUnbind("no-such-exchange", "k", "amq.direct", false, nil) }},
		{"missing source exchange", func() error { return ch.ExchangeUnbind("x-present", "k", "no-such-exchange", false, nil) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	// The channel is still open.
	declare(t, ch, nil)
}
