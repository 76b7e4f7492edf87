package amqp_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// Spring's RabbitTemplate probes for direct reply-to with a passive declare
// of the pseudo-queue; RabbitMQ answers declare-ok.
func TestPassiveDeclareOfDirectReplyTo(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q, err := ch.QueueDeclarePassive("amq.rabbitmq.reply-to", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare of amq.rabbitmq.reply-to: %v", err)
	}
	if q.Name != "amq.rabbitmq.reply-to" || q.Messages != 0 || q.Consumers != 0 {
		t.Fatalf("declare-ok %+v", q)
	}
	// The channel still works, and a non-passive declare of the name is
	// still refused (amq. is reserved).
	declare(t, ch, nil)
	_, err = ch.QueueDeclare("amq.rabbitmq.reply-to", false, false, false, false, nil)
	if err == nil {
		t.Fatal("non-passive declare of amq.rabbitmq.reply-to accepted")
	}
}
