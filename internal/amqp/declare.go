package amqp

import (
	"errors"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

func (ch *channel) exchangeDeclare(m *amqp091.ExchangeDeclare) error {
	if !m.Passive && m.Exchange != "" {
		if err := ch.conn.check(auth.Configure, "exchange", m.Exchange, m); err != nil {
			return err
		}
		if ae, ok := m.Arguments["alternate-exchange"].(string); ok {
			// RabbitMQ's table: write on the alternate, read on the
			// declared exchange.
			if err := ch.conn.check(auth.Write, "exchange", ae, m); err != nil {
				return err
			}
			if err := ch.conn.check(auth.Read, "exchange", m.Exchange, m); err != nil {
				return err
			}
		}
	}
	_, err := ch.conn.vhost.DeclareExchange(broker.ExchangeConfig{
		Name: m.Exchange, Type: m.Type, Durable: m.Durable, AutoDelete: m.AutoDelete,
		Internal: m.Internal, Args: m.Arguments,
	}, m.Passive)
	if err != nil {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.ExchangeDeclareOk{})
	}
	return nil
}

func (ch *channel) exchangeDelete(m *amqp091.ExchangeDelete) error {
	if m.Exchange != "" {
		if err := ch.conn.check(auth.Configure, "exchange", m.Exchange, m); err != nil {
			return err
		}
	}
	if err := ch.conn.vhost.DeleteExchange(m.Exchange, m.IfUnused); err != nil {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.ExchangeDeleteOk{})
	}
	return nil
}

func (ch *channel) exchangeBind(m *amqp091.ExchangeBind) error {
	if err := ch.checkBind(m.Destination, true, m.Source, m.RoutingKey, m); err != nil {
		return err
	}
	if err := ch.conn.vhost.BindExchange(m.Destination, m.Source, m.RoutingKey, m.Arguments); err != nil {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.ExchangeBindOk{})
	}
	return nil
}

func (ch *channel) exchangeUnbind(m *amqp091.ExchangeUnbind) error {
	if err := ch.checkBind(m.Destination, true, m.Source, m.RoutingKey, m); err != nil {
		return err
	}
	if err := ch.conn.vhost.UnbindExchange(m.Destination, m.Source, m.RoutingKey, m.Arguments); err != nil && !errors.Is(err, broker.ErrNotFound) {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.ExchangeUnbindOk{})
	}
	return nil
}

func (ch *channel) queueDeclare(m *amqp091.QueueDeclare) error {
	c := ch.conn
	if m.Passive && m.Queue == replyToPseudoQueue {
		// Direct reply-to is always there: clients (Spring's
		// RabbitTemplate) probe for it this way, and RabbitMQ says yes.
		if !m.NoWait {
			ch.send(&amqp091.QueueDeclareOk{Queue: m.Queue})
		}
		return nil
	}
	cfg := broker.QueueConfig{Name: m.Queue, Durable: m.Durable, Exclusive: m.Exclusive, AutoDelete: m.AutoDelete, Args: m.Arguments}
	var q *broker.Queue
	var err error
	if m.Passive {
		q, err = c.vhost.DeclareQueue(cfg, true, c.id)
	} else {
		if cfg.Name == "" {
			// Named here, so the permission is checked on the name the
			// queue gets, as RabbitMQ checks "amq.gen-…".
			cfg.Name = broker.ServerQueueName()
		}
		if err := ch.checkQueueDeclare(cfg, m); err != nil {
			return err
		}
		q, err = c.vhost.DeclareServerNamed(cfg, m.Queue == "", c.id)
	}
	if err != nil {
		return fromBroker(err, m)
	}
	ch.lastQueue = q.Name()
	if !m.NoWait {
		ready, _, consumers := q.Counts()
		ch.send(&amqp091.QueueDeclareOk{Queue: q.Name(), MessageCount: uint32(ready), ConsumerCount: uint32(consumers)})
	}
	return nil
}

func (ch *channel) queueBind(m *amqp091.QueueBind) error {
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := ch.checkBind(name, false, m.Exchange, m.RoutingKey, m); err != nil {
		return err
	}
	if err := ch.conn.vhost.BindQueue(name, m.Exchange, m.RoutingKey, m.Arguments, ch.conn.id); err != nil {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.QueueBindOk{})
	}
	return nil
}

func (ch *channel) queueUnbind(m *amqp091.QueueUnbind) error {
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := ch.checkBind(name, false, m.Exchange, m.RoutingKey, m); err != nil {
		return err
	}
	// A missing queue, exchange or binding leaves nothing to unbind:
	// RabbitMQ answers unbind-ok (aio-pika unbinds auto-deleted queues).
	if err := ch.conn.vhost.UnbindQueue(name, m.Exchange, m.RoutingKey, m.Arguments, ch.conn.id); err != nil && !errors.Is(err, broker.ErrNotFound) {
		return fromBroker(err, m)
	}
	ch.send(&amqp091.QueueUnbindOk{})
	return nil
}

func (ch *channel) queuePurge(m *amqp091.QueuePurge) error {
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := ch.conn.check(auth.Read, "queue", name, m); err != nil {
		return err
	}
	n, err := ch.conn.vhost.PurgeQueue(name, ch.conn.id)
	if err != nil {
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.QueuePurgeOk{MessageCount: uint32(n)})
	}
	return nil
}

func (ch *channel) queueDelete(m *amqp091.QueueDelete) error {
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := ch.conn.check(auth.Configure, "queue", name, m); err != nil {
		return err
	}
	// delete-ok goes out before the basic.cancel of the queue's consumers,
	// as in RabbitMQ: a client may close once its consumer is cancelled.
	n, cancel, err := ch.conn.vhost.DeleteQueueThenCancel(name, m.IfUnused, m.IfEmpty, ch.conn.id)
	if err != nil {
		cancel()
		return fromBroker(err, m)
	}
	if !m.NoWait {
		ch.send(&amqp091.QueueDeleteOk{MessageCount: uint32(n)})
	}
	cancel()
	return nil
}

// checkBind is RabbitMQ's check of a bind or unbind: write on the
// destination (queue or exchange), read on the source exchange, and on a
// topic exchange the binding key against the user's topic read
// permission.
func (ch *channel) checkBind(dest string, destIsExchange bool, source, key string, m amqp091.Method) error {
	kind := "queue"
	if destIsExchange {
		kind = "exchange"
	}
	if err := ch.conn.check(auth.Write, kind, dest, m); err != nil {
		return err
	}
	if err := ch.conn.check(auth.Read, "exchange", source, m); err != nil {
		return err
	}
	return ch.conn.checkTopic(auth.Read, source, key, m)
}

// checkQueueDeclare is RabbitMQ's check of a queue declare: configure on
// the queue and, with a dead-letter exchange, write on it and read on the
// queue.
func (ch *channel) checkQueueDeclare(cfg broker.QueueConfig, m amqp091.Method) error {
	if err := ch.conn.check(auth.Configure, "queue", cfg.Name, m); err != nil {
		return err
	}
	if dlx, ok := cfg.Args["x-dead-letter-exchange"].(string); ok {
		if err := ch.conn.check(auth.Write, "exchange", dlx, m); err != nil {
			return err
		}
		if err := ch.conn.check(auth.Read, "queue", cfg.Name, m); err != nil {
			return err
		}
	}
	// The vhost's max-queues is the broker's to check (queue_limit.go):
	// in a cluster only applying the declare can tell.
	return nil
}
