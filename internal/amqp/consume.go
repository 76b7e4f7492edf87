package amqp

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// consumer is a basic.consume subscription; it is the broker.Consumer its
// queue delivers to.
type consumer struct {
	ch        *channel
	tag       string
	queue     *broker.Queue
	noAck     bool
	prefetch  uint16 // per-consumer limits, fixed at consume time
	prefSize  uint32
	unacked   int   // guarded by ch.mu
	unackedB  int64 // guarded by ch.mu
	started   bool  // guarded by ch.mu: consume-ok has been sent
	cancelled bool  // guarded by ch.mu
}

// TryDeliver implements broker.Consumer: it encodes the delivery into the
// connection's outbox when prefetch, flow and the outbox allow.
func (c *consumer) TryDeliver(d broker.Delivery) broker.Verdict {
	if c.tryDeliver(d) {
		return broker.Take
	}
	return broker.Refuse
}

func (c *consumer) tryDeliver(d broker.Delivery) bool {
	ch := c.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || !c.started || c.cancelled {
		return false
	}
	size := int64(len(d.Msg.Body))
	if !c.noAck {
		if c.prefetch > 0 && c.unacked >= int(c.prefetch) {
			return false
		}
		if c.prefSize > 0 && c.unacked > 0 && c.unackedB+size > int64(c.prefSize) {
			return false
		}
		if ch.prefetchCount > 0 && ch.live >= int(ch.prefetchCount) {
			return false
		}
		if ch.prefetchSize > 0 && ch.live > 0 && ch.liveBytes+size > int64(ch.prefetchSize) {
			return false
		}
	}
	var tag uint64
	// The tag is assigned under the outbox's lock, so tags stay in outbox order.
	if !ch.conn.out.AppendDelivery(func(buf []byte) []byte {
		ch.nextTag++
		tag = ch.nextTag
		buf = amqp091.AppendDeliver(buf, ch.id, c.tag, tag, d.Redelivered, d.Msg.Exchange, d.Msg.RoutingKey)
		return appendContent(buf, ch.id, d.Msg, ch.conn.frameMax)
	}) {
		return false
	}
	ch.counters.countDelivered(false, d.Redelivered)
	if !c.noAck {
		ch.unacked = append(ch.unacked, unacked{tag: tag, d: d, c: c})
		ch.live++
		ch.liveBytes += size
		c.unacked++
		c.unackedB += size
	}
	return true
}

// Cancelled implements broker.Consumer: the queue was deleted. Clients that
// asked for consumer_cancel_notify get basic.cancel.
func (c *consumer) Cancelled(*broker.Queue) {
	ch := c.ch
	ch.mu.Lock()
	if ch.closed || c.cancelled {
		ch.mu.Unlock()
		return
	}
	c.cancelled = true
	delete(ch.consumers, c.tag)
	ch.mu.Unlock()
	ch.conn.srv.stats.consumersOpen.Add(-1)
	if ch.conn.caps.cancelNotify {
		ch.conn.appendMethod(ch.id, &amqp091.BasicCancel{ConsumerTag: c.tag, NoWait: true})
	}
}

func (ch *channel) basicQos(m *amqp091.BasicQos) error {
	ch.mu.Lock()
	if m.Global || ch.conn.caps.specQos {
		ch.prefetchCount, ch.prefetchSize = m.PrefetchCount, m.PrefetchSize
	} else {
		ch.consumerCount, ch.consumerSize = m.PrefetchCount, m.PrefetchSize
	}
	ch.mu.Unlock()
	ch.send(&amqp091.BasicQosOk{})
	// A raised limit may let waiting messages through.
	ch.redispatch()
	return nil
}

func (ch *channel) basicConsume(m *amqp091.BasicConsume) error {
	c := ch.conn
	if m.Queue == replyToPseudoQueue {
		return ch.consumeReplies(m)
	}
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := c.check(auth.Read, "queue", name, m); err != nil {
		return err
	}
	q, err := c.vhost.Queue(name, c.id)
	if err != nil {
		return fromBroker(err, m)
	}
	return ch.startConsumer(m, q)
}

// streamOptions reads a stream consumer's arguments, with RabbitMQ's rules:
// manual acknowledgement and a prefetch are required.
func (ch *channel) streamOptions(m *amqp091.BasicConsume) (broker.StreamOptions, error) {
	var o broker.StreamOptions
	if m.NoAck {
		return o, newError(amqp091.PreconditionFailed, m, "stream consumers must use manual acknowledgement")
	}
	ch.mu.Lock()
	prefetch := ch.consumerCount > 0 || ch.prefetchCount > 0
	ch.mu.Unlock()
	if !prefetch {
		return o, newError(amqp091.PreconditionFailed, m, "consumer prefetch count is not set for stream queue")
	}
	a := m.Arguments
	o.Offset = a["x-stream-offset"]
	switch f := a["x-stream-filter"].(type) {
	case nil:
	case string:
		o.Filters = []string{f}
	case []any:
		for _, v := range f {
			s, ok := v.(string)
			if !ok {
				return o, newError(amqp091.PreconditionFailed, m, "x-stream-filter must hold strings")
			}
			o.Filters = append(o.Filters, s)
		}
	default:
		return o, newError(amqp091.PreconditionFailed, m, "x-stream-filter must be a string or an array of strings")
	}
	o.MatchUnfiltered, _ = a["x-stream-match-unfiltered"].(bool)
	o.Name, _ = a["x-stream-consumer-name"].(string)
	return o, nil
}

// startConsumer registers a consumer; consume-ok goes out before the first
// delivery.
func (ch *channel) startConsumer(m *amqp091.BasicConsume, q *broker.Queue) error {
	tag := m.ConsumerTag
	if tag == "" {
		tag = "amq.ctag-" + randomToken()
	}
	prio, err := consumerPriority(m)
	if err != nil {
		return err
	}
	ch.mu.Lock()
	if _, dup := ch.consumers[tag]; dup {
		ch.mu.Unlock()
		return newError(amqp091.NotAllowed, m, "attempt to reuse consumer tag '%s'", tag)
	}
	cons := &consumer{ch: ch, tag: tag, queue: q, noAck: m.NoAck, prefetch: ch.consumerCount, prefSize: ch.consumerSize}
	ch.consumers[tag] = cons
	credit := cmp.Or(ch.consumerCount, ch.prefetchCount) // a quorum queue's credit: the consumer's prefetch, else the channel's
	ch.mu.Unlock()

	opts := broker.ConsumeOptions{NoAck: m.NoAck, Exclusive: m.Exclusive, Priority: prio, Prefetch: int(credit)}
	if q.IsStream() {
		if opts.Stream, err = ch.streamOptions(m); err != nil {
			ch.mu.Lock()
			delete(ch.consumers, tag)
			ch.mu.Unlock()
			return err
		}
	}
	if err := q.Consume(cons, opts); err != nil {
		ch.mu.Lock()
		delete(ch.consumers, tag)
		ch.mu.Unlock()
		return fromBroker(err, m)
	}
	ch.conn.srv.stats.consumersOpen.Add(1)
	// consume-ok goes into the outbox and the consumer starts under one
	// hold of the delivery lock: no delivery can precede consume-ok, and
	// none is refused once the client has seen it.
	ch.mu.Lock()
	if !m.NoWait {
		ch.send(&amqp091.BasicConsumeOk{ConsumerTag: tag})
	}
	cons.started = true
	ch.mu.Unlock()
	q.Dispatch()
	return nil
}

// consumerPriority reads the x-priority consumer argument.
func consumerPriority(m *amqp091.BasicConsume) (int, error) {
	v, ok := m.Arguments["x-priority"]
	if !ok {
		return 0, nil
	}
	switch n := v.(type) {
	case int8:
		return int(n), nil
	case int16:
		return int(n), nil
	case int32:
		return int(n), nil
	case int64:
		return int(n), nil
	case uint8:
		return int(n), nil
	case uint16:
		return int(n), nil
	case uint32:
		return int(n), nil
	}
	return 0, newError(amqp091.PreconditionFailed, m, "invalid arg 'x-priority' for consumer: %v", v)
}

func (ch *channel) basicCancel(m *amqp091.BasicCancel) error {
	ch.mu.Lock()
	c := ch.consumers[m.ConsumerTag]
	if c != nil {
		delete(ch.consumers, m.ConsumerTag)
		c.cancelled = true
		if c.queue.Name() == ch.replyQueue {
			ch.replyQueue = "" // the auto-delete reply queue goes with its consumer
		}
	}
	ch.mu.Unlock()
	if c != nil {
		c.queue.Cancel(c)
		ch.conn.srv.stats.consumersOpen.Add(-1)
	}
	// Cancelling an unknown tag is not an error (spec: basic.cancel).
	if !m.NoWait {
		ch.send(&amqp091.BasicCancelOk{ConsumerTag: m.ConsumerTag})
	}
	return nil
}

func (ch *channel) basicGet(m *amqp091.BasicGet) error {
	name, err := ch.queueName(m.Queue, m)
	if err != nil {
		return err
	}
	if err := ch.conn.check(auth.Read, "queue", name, m); err != nil {
		return err
	}
	q, err := ch.conn.vhost.Queue(name, ch.conn.id)
	if err != nil {
		return fromBroker(err, m)
	}
	if q.IsStream() {
		return newError(amqp091.PreconditionFailed, m, "operation basic.get not supported on stream '%s'", name)
	}
	// The get runs before taking the channel's lock (lock order is queue,
	// then channel); the tag is assigned and written under it, so tags stay
	// in outbox order.
	d, ok, err := q.Fetch(m.NoAck)
	if err != nil {
		return fromBroker(err, m) // a remote queue's node down: 404, as RabbitMQ
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !ok {
		ch.conn.appendMethod(ch.id, &amqp091.BasicGetEmpty{})
		return nil
	}
	ch.conn.out.Append(func(buf []byte) []byte {
		ch.nextTag++
		buf = amqp091.AppendGetOk(buf, ch.id, ch.nextTag, d.Redelivered, d.Msg.Exchange, d.Msg.RoutingKey, uint32(d.Remaining))
		return appendContent(buf, ch.id, d.Msg, ch.conn.frameMax)
	})
	ch.counters.countDelivered(true, d.Redelivered)
	if !m.NoAck {
		ch.unacked = append(ch.unacked, unacked{tag: ch.nextTag, d: d})
		ch.live++
		ch.liveBytes += int64(len(d.Msg.Body))
	}
	return nil
}

func randomToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
