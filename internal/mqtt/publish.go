package mqtt

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// toMessage maps a PUBLISH to a core message (docs/design/mqtt.md). The
// publish's QoS, retain flag and client go in the message's Origin, never
// in headers: user properties are the client's, forwarded unaltered and in
// order [MQTT-3.3.2-17, -18], whatever their names.
func (c *conn) toMessage(p *wire.Publish) *message.Message {
	m := &message.Message{Exchange: "amq.topic", RoutingKey: topicToKey(p.Topic), Body: p.Payload, Published: c.srv.clock.Now().UnixNano(),
		Origin: message.Origin{ClientID: c.clientID, MQTT: true, QoS: p.QoS, Retain: p.Retain}}
	if p.QoS > 0 {
		m.Props.DeliveryMode = 2
	} else {
		m.Props.DeliveryMode = 1
	}
	pr := &p.Props
	if pr.Has(wire.PropContentType) {
		m.Props.ContentType = pr.ContentType
	}
	if pr.Has(wire.PropResponseTopic) {
		m.Props.ReplyTo = topicToKey(pr.ResponseTopic)
	}
	if pr.Has(wire.PropCorrelationData) {
		m.Props.CorrelationID = string(pr.CorrelationData) // whole: the record carries it past 255 bytes
	}
	if pr.Has(wire.PropMessageExpiry) {
		m.Props.Expiration = strconv.FormatUint(uint64(pr.MessageExpiry)*1000, 10)
	}
	if pr.Has(wire.PropPayloadFormat) {
		m.Origin.PayloadFormat = pr.PayloadFormat
	}
	if len(pr.User) > 0 {
		ordered := make([]message.Header, len(pr.User))
		h := make(map[string]any, len(pr.User))
		for i, u := range pr.User {
			ordered[i] = message.Header{Key: u.Key, Value: u.Value}
			if _, dup := h[u.Key]; !dup {
				h[u.Key] = u.Value // the lookup view keeps the first, as RabbitMQ does
			}
		}
		m.Props.Ordered, m.Props.Headers = ordered, h
	}
	return m
}

// publish handles an inbound PUBLISH.
func (c *conn) publish(p *wire.Publish) error {
	c.srv.stats.publishesIn.Add(1)
	if c.v == wire.V5 && p.Props.Has(wire.PropTopicAlias) {
		a := p.Props.TopicAlias
		if a == 0 || a > c.srv.cfg.TopicAliasMaximum {
			return &wire.Error{Code: wire.TopicAliasInvalid, Msg: "topic alias out of range"} // [MQTT-3.3.2-8, -9]
		}
		if p.Topic != "" {
			put(&c.aliasesIn, a, p.Topic)
		} else if t, ok := c.aliasesIn[a]; ok {
			p.Topic = t
		} else {
			return &wire.Error{Code: wire.ProtocolError, Msg: "unknown topic alias"}
		}
	}
	if p.Topic == "" {
		return &wire.Error{Code: wire.ProtocolError, Msg: "PUBLISH without a topic"}
	}
	if p.QoS == 2 && c.acks.awaitingRelease(p.PacketID, p.Dup) {
		// A resend of a QoS 2 message already routed: answer, route nothing.
		c.send(&wire.Ack{Kind: wire.PUBREC, PacketID: p.PacketID})
		return nil
	}
	if p.QoS > 0 && c.acks.unacknowledged() >= int(c.srv.cfg.ReceiveMaximum) && c.v == wire.V5 {
		return &wire.Error{Code: wire.ReceiveMaximumExceeded, Msg: "too many unacknowledged publishes"} // [MQTT-3.3.4-9]
	}
	if !c.allowed(auth.Write, p.Topic) {
		c.refusedPublish(p)
		return nil
	}
	if err := c.tooLarge(len(p.Payload)); err != nil {
		return err
	}
	m := c.toMessage(p)
	if c.inline {
		m.Batch = c.loop.burst.period() // the poller flushes it after its burst of events
	} else {
		if c.batch == nil {
			c.batch = &writeBatch{}
			c.batch.begin() // publish runs inside consume, which flushes it
		}
		m.Batch = c.batch.period()
	}
	if p.Retain {
		c.flushBatch() // the retained record's commit is waited for
		if err := c.srv.retained.set(c.srv.cfg.VHost, p.Topic, m); err != nil {
			c.logger().Error("storing a retained message failed", "err", err)
			return &wire.Error{Code: wire.UnspecifiedError, Msg: "could not store the retained message"}
		}
	}
	c.waitWhileBlocked()
	if d := c.srv.broker.Limits().Reserve(c.vhost.Name(), c.user.Name, c.id, len(p.Payload)); d > 0 {
		c.stall(d)
	}
	var done message.Completion
	var token uint64
	if p.QoS > 0 {
		kind := wire.PUBACK
		if p.QoS == 2 {
			kind = wire.PUBREC
		}
		token = c.acks.begin(kind, p.PacketID)
		done = &c.acks
	}
	if c.scratch == nil {
		c.scratch = &broker.RouteScratch{}
	}
	res, err := c.vhost.Publish(c.scratch, m, done, token)
	if err != nil {
		return fmt.Errorf("mqtt: publish to %q: %w", p.Topic, err) // internal: protocolError logs it
	}
	if res.Pending > 0 {
		c.routesToDisk = true // inline.go: its publishes leave the event loop
	}
	if p.QoS > 0 {
		c.acks.routed(token, res)
	}
	if res.Hold > 0 { // a queue's publish-rate policy
		c.stall(res.Hold)
	}
	return nil
}

// flushBatch writes the deliveries the batch deferred so far, before the
// reader may wait; the batch stays open.
func (c *conn) flushBatch() {
	if c.batch != nil {
		c.batch.flush(true)
	}
}

// waitWhileBlocked stops reading while a resource alarm is on: TCP pushes
// back on the publisher, as for AMQP (MQTT has no blocked notification).
func (c *conn) waitWhileBlocked() {
	if c.inline {
		return // the event loop serves no publish while an alarm is on (inlineStop)
	}
	for {
		blocked := false
		for _, a := range c.srv.broker.Alarms() {
			blocked = blocked || a.Active()
		}
		if !blocked || c.kicked.Load() != 0 {
			return
		}
		c.acks.flush()
		c.flushBatch()
		_ = c.nc.SetReadDeadline(time.Time{})
		time.Sleep(50 * time.Millisecond)
	}
}

// reasonText is the reason string sent with an error reason code.
var reasonText = map[byte]string{
	wire.NoMatchingSubscribers: "no matching subscribers",
	wire.QuotaExceeded:         "a queue refused the message (length limit)",
	wire.UnspecifiedError:      "internal error",
	wire.TopicFilterInvalid:    "invalid topic filter",
	wire.NoSubscriptionExisted: "no such subscription",
	wire.PacketIDNotFound:      "unknown packet identifier",
}

// ackQueue answers QoS 1 and 2 publishes in the order they came
// [MQTT-4.6.0-2], each as soon as it is routed and, where a durable session
// queue stored it, fsynced — not when the reader next finds the socket
// idle, which a client streaming at its Receive Maximum never lets happen.
// Durable is called by the store's commit goroutine.
type ackQueue struct {
	c    *conn
	mu   sync.Mutex
	fifo []pendingAck
	head int
	next uint64
	// qos1 counts the PUBACKs in fifo; rel holds the inbound QoS 2 packet
	// ids from PUBLISH until PUBREL. Together they are the client's
	// unacknowledged publishes, each counted once [MQTT-3.3.4-7].
	qos1 int
	rel  map[uint16]byte // relHeld or relRecovered (inflight.go)
	// durable: the session's inbound packet ids are recorded in the
	// session log (a persistent session with a store), so a DUP resend
	// after a restart is not routed twice either.
	durable bool
}

type pendingAck struct {
	token   uint64
	kind    byte
	pid     uint16
	waiting int
	routed  bool
	reason  byte
	failed  bool
}

// unacknowledged is how many QoS 1 and 2 publishes of the client count
// against the server's Receive Maximum.
func (a *ackQueue) unacknowledged() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.qos1 + len(a.rel)
}

// awaitingRelease reports whether a QoS 2 packet id was received and not
// yet released: a PUBLISH with it is a resend. An id recovered from the
// session log after a restart may have been released by a PUBREL whose
// removal the crash lost, so only a PUBLISH marked DUP is a resend of it
// [MQTT-3.3.1-1]; one without DUP is a new message and starts a new flow.
func (a *ackQueue) awaitingRelease(pid uint16, dup bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.rel[pid] {
	case relHeld:
		return true
	case relRecovered:
		return dup
	}
	return false
}

// release ends an inbound QoS 2 flow on PUBREL; known is false if pid was
// unknown. done (the PUBCOMP) runs once the id's removal is durable: at
// once unless the id has a record.
func (a *ackQueue) release(pid uint16, done func(known bool, err error)) {
	a.mu.Lock()
	_, known := a.rel[pid]
	delete(a.rel, pid)
	durable := a.durable
	a.mu.Unlock()
	if known && durable {
		a.c.srv.sessions.inboundReleased(a.c.clientID, pid, func(err error) { done(true, err) })
		return
	}
	done(known, nil)
}

func (a *ackQueue) begin(kind byte, pid uint16) uint64 {
	a.mu.Lock()
	if kind == wire.PUBREC {
		put(&a.rel, pid, relHeld)
	} else {
		a.qos1++
	}
	a.next++
	token := a.next
	p := pendingAck{token: token, kind: kind, pid: pid}
	record := kind == wire.PUBREC && a.durable
	if record {
		p.waiting = 1 // the packet id's record, with the publish's group commit
	}
	a.fifo = append(a.fifo, p)
	a.mu.Unlock()
	if record {
		a.c.srv.sessions.inboundHeld(a.c.clientID, pid, a, token)
	}
	return token
}

func (a *ackQueue) find(token uint64) *pendingAck {
	for i := a.head; i < len(a.fifo); i++ {
		if a.fifo[i].token == token {
			return &a.fifo[i]
		}
	}
	return nil
}

func (a *ackQueue) routed(token uint64, res broker.PublishResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.find(token)
	if p == nil {
		return
	}
	p.waiting += res.Pending
	p.routed = true
	switch {
	case res.Rejected:
		p.reason, p.failed = wire.QuotaExceeded, true
	case res.Routed == 0:
		p.reason = wire.NoMatchingSubscribers
	}
	a.sendReadyLocked()
}

// Durable implements message.Completion.
func (a *ackQueue) Durable(token uint64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.find(token); p != nil {
		p.waiting--
		if err != nil {
			if errors.Is(err, broker.ErrNodeUnreachable) {
				a.c.copyUnreachable(err) // not a failure of the publish (cluster.go)
			} else {
				p.reason, p.failed = wire.UnspecifiedError, true
			}
		}
	}
	a.sendReadyLocked()
}

// flush sends what is ready; the reader calls it before blocking.
func (a *ackQueue) flush() {
	a.mu.Lock()
	a.sendReadyLocked()
	a.mu.Unlock()
}

func (a *ackQueue) sendReadyLocked() {
	c := a.c
	for a.head < len(a.fifo) {
		p := a.fifo[a.head]
		if !p.routed || p.waiting > 0 {
			break
		}
		a.head++
		if p.kind == wire.PUBACK {
			a.qos1--
		} else if p.failed {
			// A PUBREC with an error code ends the QoS 2 flow: no PUBREL
			// follows and the packet id is free again.
			delete(a.rel, p.pid)
			if a.durable {
				a.c.srv.sessions.inboundReleased(c.clientID, p.pid, nil)
			}
		}
		if p.failed && c.v != wire.V5 {
			// 3.1.1 has no negative acknowledgement: drop the connection so
			// the client resends the unacknowledged message.
			// Debug: the store logs the failure once when it starts, not per message.
			c.logger().Debug("could not take a QoS 1/2 message; disconnecting the 3.1.1 client")
			c.publishFailed()
			continue
		}
		if p.reason == 0 {
			// The short form, with no properties (what Ack.Append writes
			// for it), from the stack: one allocation less per QoS 1
			// publish than a boxed *wire.Ack.
			short := [4]byte{p.kind << 4, 2, byte(p.pid >> 8), byte(p.pid)}
			c.out.Write(short[:])
			continue
		}
		ack := &wire.Ack{Kind: p.kind, PacketID: p.pid}
		if c.v == wire.V5 {
			ack.ReasonCode = p.reason
			c.explain(&ack.Props, p.reason)
		}
		c.send(ack)
	}
	if a.head == len(a.fifo) {
		a.fifo, a.head = a.fifo[:0], 0
	}
}

// explain adds the reason string for an error code (0x80 and above) to an
// acknowledgement's properties. Success-class codes such as 0x10 "no
// matching subscribers" get none, as Mosquitto sends none and many client
// parsers expect the short form; and a client that set Request Problem
// Information to 0 gets none at all [MQTT-3.1.2-29].
func (c *conn) explain(pr *wire.Properties, code byte) {
	if code < 0x80 || !c.problemInfo {
		return
	}
	if text := reasonText[code]; text != "" {
		pr.ReasonString = text
		pr.Set(wire.PropReasonString)
	}
}

// publishFailed ends a 3.1.1 connection whose QoS 1/2 publish could not
// be taken, as any kick does (the reader woken, a blocking one's read
// deadline cut short), with its own logged reason; 3.1.1 gets no
// DISCONNECT. It may run on another goroutine than the reader's (a
// durability callback flushing the acks). Before, it only marked the
// connection kicked and closed the outbox after its flush: a parked
// reader was not woken, so a client that did not read kept the
// connection until the write timeout (60 s), and every later kick
// (takeover, shutdown) was a no-op on it.
func (c *conn) publishFailed() { c.kickAs(kickPublishFailed, 0) }
