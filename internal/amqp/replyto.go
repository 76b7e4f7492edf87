package amqp

import (
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// consumeReplies starts a direct reply-to consumer (RabbitMQ's
// amq.rabbitmq.reply-to): the channel gets a hidden exclusive queue named
// amq.rabbitmq.reply-to.<token>; a publish on this channel with reply-to
// "amq.rabbitmq.reply-to" carries that name instead, so a responder's reply
// through the default exchange lands straight back here.
func (ch *channel) consumeReplies(m *amqp091.BasicConsume) error {
	if !m.NoAck {
		return newError(amqp091.PreconditionFailed, m, "reply consumer cannot acknowledge")
	}
	ch.mu.Lock()
	exists := ch.replyQueue != ""
	ch.mu.Unlock()
	if exists {
		return newError(amqp091.PreconditionFailed, m, "reply consumer already set")
	}
	c := ch.conn
	q, err := c.vhost.DeclareQueue(broker.QueueConfig{
		Name: replyToPseudoQueue + "." + randomToken(), Exclusive: true, AutoDelete: true, Internal: true,
	}, false, c.id)
	if err != nil {
		return fromBroker(err, m)
	}
	ch.mu.Lock()
	ch.replyQueue = q.Name()
	ch.mu.Unlock()
	if err := ch.startConsumer(m, q); err != nil {
		ch.mu.Lock()
		ch.replyQueue = ""
		ch.mu.Unlock()
		_, _ = c.vhost.DeleteQueue(q.Name(), false, false, c.id)
		return err
	}
	return nil
}
