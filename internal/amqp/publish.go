package amqp

import (
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// replyToPseudoQueue is RabbitMQ's direct reply-to name.
const replyToPseudoQueue = "amq.rabbitmq.reply-to"

func (ch *channel) basicPublish() error {
	if ch.pub.Immediate {
		// RabbitMQ dropped immediate in 3.0 and answers it this way.
		return newError(amqp091.NotImplemented, &ch.pub, "immediate=true")
	}
	ch.pubState = pubWantHeader
	return nil
}

// handleContent assembles a published message from its header and body
// frames (spec 4.2.6).
func (ch *channel) handleContent(f amqp091.Frame) error {
	if ch.closing {
		return nil
	}
	switch f.Type {
	case amqp091.FrameHeader:
		if ch.pubState != pubWantHeader {
			return newError(amqp091.UnexpectedFrame, nil, "unexpected content header on channel %d", ch.id)
		}
		if err := ch.conn.dec.DecodeContentHeader(f.Payload, &ch.hdr); err != nil {
			return newError(amqp091.FrameError, nil, "malformed content header: %v", err)
		}
		if ch.hdr.ClassID != amqp091.ClassBasic {
			return newError(amqp091.FrameError, nil, "content header for class %d", ch.hdr.ClassID)
		}
		if max := ch.conn.srv.cfg.MaxMessageSize; ch.hdr.BodySize > max {
			ch.pubState = pubIdle
			return ch.softError(amqp091.PreconditionFailed, &ch.pub, "message size %d is larger than configured max size %d", ch.hdr.BodySize, max)
		}
		if max := ch.conn.access().maxMessage; max >= 0 && ch.hdr.BodySize > uint64(max) {
			// The vhost's max-message-size (a Tern limit; RabbitMQ's
			// text, naming the limit).
			ch.pubState = pubIdle
			return ch.softError(amqp091.PreconditionFailed, &ch.pub, "message size %d is larger than configured max size %d (max-message-size of vhost '%s')",
				ch.hdr.BodySize, max, ch.conn.vhost.Name())
		}
		// One allocation holds the encoded properties and the body.
		raw := ch.hdr.RawProperties
		buf := make([]byte, len(raw), len(raw)+int(ch.hdr.BodySize))
		copy(buf, raw)
		ch.msg = &message.Message{
			Exchange:   ch.pub.Exchange,
			RoutingKey: ch.pub.RoutingKey,
			Props:      fromWire(&ch.hdr.Properties),
			WireProps:  buf[:len(raw):len(raw)],
			Body:       buf[len(raw):len(raw)],
		}
		if ch.hdr.BodySize == 0 {
			return ch.publishComplete()
		}
		ch.pubState = pubWantBody
		return nil
	default: // body
		if ch.pubState != pubWantBody {
			return newError(amqp091.UnexpectedFrame, nil, "unexpected content body on channel %d", ch.id)
		}
		if uint64(len(ch.msg.Body)+len(f.Payload)) > ch.hdr.BodySize {
			return newError(amqp091.FrameError, nil, "content body exceeds the %d bytes announced", ch.hdr.BodySize)
		}
		ch.msg.Body = append(ch.msg.Body, f.Payload...)
		if uint64(len(ch.msg.Body)) == ch.hdr.BodySize {
			return ch.publishComplete()
		}
		return nil
	}
}

func (ch *channel) softError(code uint16, m amqp091.Method, format string, args ...any) error {
	e := newError(code, m, format, args...)
	e.ch = ch.id
	return e
}

func (ch *channel) publishComplete() error {
	m := ch.msg
	ch.msg = nil
	ch.pubState = pubIdle
	mandatory := ch.pub.Mandatory
	if err := broker.ValidateExpiration(m); err != nil {
		return ch.softError(amqp091.PreconditionFailed, &ch.pub, "invalid expiration '%s' for message", m.Props.Expiration)
	}
	if err := ch.mayPublish(m.Exchange, m.RoutingKey); err != nil {
		return err
	}
	if m.Props.UserID != "" && m.Props.UserID != ch.conn.user.Name {
		return ch.softError(amqp091.PreconditionFailed, &ch.pub, "user_id property set to '%s' but authenticated user was '%s'", m.Props.UserID, ch.conn.user.Name)
	}
	if m.Props.ReplyTo == replyToPseudoQueue {
		ch.mu.Lock()
		rq := ch.replyQueue
		ch.mu.Unlock()
		if rq == "" {
			return ch.softError(amqp091.PreconditionFailed, &ch.pub, "fast reply consumer does not exist")
		}
		m.Props.ReplyTo = rq
		m.WireProps = nil // re-encode with the rewritten reply-to
	}
	if err := ch.conn.waitWhileBlocked(); err != nil {
		return err // the client is gone: its publish is dropped with it
	}
	ch.conn.throttle(len(m.Body))
	if ch.tx != nil {
		ch.tx.publishes = append(ch.tx.publishes, txPublish{msg: m, mandatory: mandatory})
		return nil
	}
	_, err := ch.route(m, mandatory, nil)
	return err
}

// route publishes m and answers with basic.return and a confirm as needed.
// done, when not nil, waits for the message's durable appends (tx.commit).
func (ch *channel) route(m *message.Message, mandatory bool, done message.Completion) (broker.PublishResult, error) {
	m.Published = ch.conn.srv.broker.Clock().Now().UnixNano() // the broker's clock times TTLs and delays
	var token uint64
	if ch.confirm {
		ch.publishSeq++
		token = ch.publishSeq
		ch.cf.begin(token)
		done = ch
	}
	res, err := ch.conn.vhost.Publish(&ch.scratch, m, done, token)
	if err != nil {
		return res, fromBroker(err, &amqp091.BasicPublish{})
	}
	ch.counters.publish.Add(1)
	if ch.confirm && res.Routed == 0 && !res.Rejected && ch.conn.vhost.RoutingMayBeStale() {
		// A cluster node cut off from the majority: "unroutable" may be
		// wrong, so a nack, not a confirm (broker.RoutingMayBeStale).
		res.Rejected = true
	}
	if mandatory && res.Routed == 0 && !res.Rejected {
		ch.basicReturn(m)
	}
	if ch.confirm {
		ch.cf.routed(token, res.Pending, res.Rejected)
		if !ch.confirmQueued {
			ch.confirmQueued = true
			ch.conn.confirmQ = append(ch.conn.confirmQ, ch)
		}
	}
	ch.conn.pause(res.Hold, "queue publish rate limit") // a queue's publish-rate policy
	return res, nil
}

func (ch *channel) basicReturn(m *message.Message) {
	ch.conn.out.Append(func(buf []byte) []byte {
		buf = amqp091.AppendReturn(buf, ch.id, amqp091.NoRoute, "NO_ROUTE", m.Exchange, m.RoutingKey)
		return appendContent(buf, ch.id, m, ch.conn.frameMax)
	})
	ch.conn.srv.stats.returned.Add(1)
	ch.counters.returned.Add(1)
}

func (ch *channel) confirmSelect(m *amqp091.ConfirmSelect) error {
	if ch.tx != nil {
		return newError(amqp091.PreconditionFailed, m, "cannot switch from tx to confirm mode")
	}
	ch.confirm = true
	if !m.NoWait {
		ch.send(&amqp091.ConfirmSelectOk{})
	}
	return nil
}

// throttle applies the publish rate limits: the reader sleeps as long as
// the token buckets say, so the publisher is slowed by TCP backpressure,
// never dropped; a long hold is announced with connection.blocked.
func (c *connection) throttle(size int) {
	c.pause(c.srv.broker.Limits().Reserve(c.vhost.Name(), c.user.Name, c.id, size), "publish rate limit")
}

// pause stops the reader for d, announcing a long hold with
// connection.blocked and the reason.
func (c *connection) pause(d time.Duration, reason string) {
	if d <= 0 {
		return
	}
	c.flushConfirms()
	long := d >= 500*time.Millisecond
	if long {
		c.notifyBlocked(reason)
	}
	c.srv.broker.Clock().Sleep(d) // the broker's clock, which the buckets read: a test's fake clock releases it
	if long {
		c.notifyBlocked("")
	}
}

// blockReason names the first active alarm as RabbitMQ words it, or "".
func (c *connection) blockReason() string {
	for _, a := range c.srv.broker.Alarms() {
		if a.Active() {
			return "low on " + a.Name()
		}
	}
	return ""
}

// notifyBlocked sends connection.blocked (reason non-empty) or
// connection.unblocked to clients that declared the capability, once per
// transition. It runs on the reader and on alarm goroutines.
func (c *connection) notifyBlocked(reason string) {
	on := reason != ""
	if !c.caps.blocked || !c.blockNotified.CompareAndSwap(!on, on) {
		return
	}
	if on {
		c.appendMethod(0, &amqp091.ConnectionBlocked{Reason: reason})
	} else {
		c.appendMethod(0, &amqp091.ConnectionUnblocked{})
	}
}
