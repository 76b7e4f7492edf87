package mqtt

import (
	"slices"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// subscriber consumes a queue on behalf of a connection: its session queue,
// or a shared subscription's group queue (filter set).
type subscriber struct {
	c      *conn
	q      *broker.Queue
	filter string  // shared subscription: the filter of the group queue
	opts   subOpts // shared subscription: its options
}

// messageQoS is the QoS a core message was published with: MQTT's own, or
// 1 for a persistent AMQP message and 0 for a transient one.
func messageQoS(m *message.Message) byte {
	if m.Origin.MQTT {
		return m.Origin.QoS
	}
	if m.Persistent() {
		return 1
	}
	return 0
}

// TryDeliver implements broker.Consumer: it turns a queue delivery into a
// PUBLISH in the connection's outbox.
func (s *subscriber) TryDeliver(d broker.Delivery) broker.Verdict {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.kicked.Load() != 0 {
		return broker.Refuse
	}
	m := d.Msg
	// A QoS 1/2 delivery from the session queue goes with the packet id
	// its sequence number gives (inflight.go), so a resend after a
	// reconnect or a restart has the original id [MQTT-4.4.0-1]. While
	// that id is busy the message waits.
	fromSession := s.filter == "" && c.sub == s
	var pid uint16
	var pidBusy bool
	if fromSession {
		pid = pidForSeq(d.Seq)
		_, pidBusy = c.inflight[pid]
		if c.sess != nil && c.sess.isReleased(s.q.ID(), d.Seq, m.Published) {
			// Its PUBREC came and was recorded; the queue still holds it
			// only because the ack that follows the record was lost (the
			// connection ended first, or a crash). The PUBREL goes from the
			// record (resendReleased), never the PUBLISH [MQTT-4.4.0-1].
			return broker.TakeSettled
		}
	}
	topic := keyToTopic(m.RoutingKey)
	publisher := m.Origin.ClientID

	// Which subscriptions accept it, by MQTT's rules ($-topics, no-local)?
	var qos byte
	var rap, matched bool
	var subIDs []uint32
	consider := func(filter string, o subOpts) {
		if !matches(filter, topic) || (o.noLocal && publisher == c.clientID) {
			return
		}
		matched = true
		qos = max(qos, o.qos)
		rap = rap || o.retainAsPublished
		if o.subID != 0 {
			subIDs = append(subIDs, o.subID)
		}
	}
	if s.filter != "" {
		consider(s.filter, s.opts)
	} else {
		for f, o := range c.subs {
			consider(f, o)
		}
	}
	if !matched || expired(m, c.srv.clock) {
		return broker.TakeSettled // no MQTT subscription wants it, or too late: drop
	}
	if !sendableTopic(topic) {
		// Checked for every message, not only AMQP ones: a dead-lettered
		// MQTT message can carry a routing key an AMQP user chose.
		c.dropUnsendable(m.RoutingKey) // topic.go: no PUBLISH may carry it
		return broker.TakeSettled
	}
	qos = min(qos, messageQoS(m))
	if qos > 0 && (len(c.inflight) >= c.recvMax || pidBusy) {
		c.roomWanted = true  // the next acknowledgement redispatches
		return broker.Refuse // the client's receive maximum [MQTT-3.3.4-7], or the id is in use
	}
	// DUP: a redelivery, or (QoS 2) a message stored before this broker
	// started, which may have gone out before a kill -9 that lost the
	// queue's record of its delivery: "might be re-delivery" is what DUP
	// says [MQTT-3.3.1-1], and it lets a receiver that tells a resend by
	// DUP and packet id absorb it.
	dup := qos > 0 && (d.Redelivered || (qos == 2 && m.Published < c.srv.started))
	p := &wire.Publish{QoS: qos, Topic: topic, Payload: m.Body, Dup: dup}
	if rap {
		p.Retain = m.Origin.Retain
	}
	if c.v == wire.V5 {
		fromProps(&p.Props, m, c.srv.clock)
		p.Props.SubscriptionIDs = subIDs
	}
	tooLarge := false
	// Packet ids and aliases are assigned under the outbox's lock, so they
	// are used in the order the client sees them.
	add := func(buf []byte) []byte {
		if qos > 0 {
			if fromSession {
				p.PacketID = pid
			} else {
				p.PacketID = c.allocPIDLocked()
			}
		}
		newAlias := c.v == wire.V5 && c.aliasLocked(p)
		before := len(buf)
		buf = p.Append(buf, c.v)
		if c.maxOut > 0 && uint32(len(buf)-before) > c.maxOut {
			// Too large for the client [MQTT-3.1.2-25]: discard it, and
			// the alias it would have set up.
			tooLarge = true
			if newAlias {
				delete(c.aliasOut, topic)
			}
			return buf[:before]
		}
		return buf
	}
	var appended bool
	if b, _ := m.Batch.(*batchPeriod); b != nil {
		appended = b.appendTo(c.out, add) // the publisher's reader writes it (batch.go)
	} else {
		appended = c.out.AppendDelivery(add)
	}
	if !appended {
		if qos == 0 && d.Remaining > c.srv.cfg.QoS0Backlog {
			// A hopelessly slow subscriber loses QoS 0 messages rather
			// than pile them up without end; they are counted. Otherwise,
			// and always for QoS 1/2, the message waits in the queue.
			c.srv.stats.qos0Dropped.Add(1)
			return broker.TakeSettled
		}
		return broker.Refuse
	}
	if tooLarge {
		return broker.TakeSettled
	}
	c.srv.stats.delivered.Add(1)
	if qos == 0 {
		return broker.TakeSettled
	}
	put(&c.inflight, p.PacketID, &outflight{d: d, stored: true, qos: qos})
	return broker.Take
}

// dropUnsendable counts and logs (limited) an AMQP message whose routing
// key is no MQTT topic name: it is settled for this subscriber, never sent.
func (c *conn) dropUnsendable(key string) {
	c.srv.stats.unsendable.Add(1)
	if ok, unlogged := c.srv.unsendableLog.allow(time.Now()); ok {
		c.logger().Warn("message not delivered to an MQTT client: its routing key is no valid MQTT topic name (empty, a wildcard '#' or '+', U+0000 or invalid UTF-8)",
			"routing_key", strconv.Quote(key), "unlogged", unlogged)
	}
}

// aliasLocked gives p a topic alias when the client accepts them: a topic
// seen before goes as its alias alone; a new one, while aliases remain,
// goes in full with the alias it will have from now on [MQTT-3.3.2-12]. It
// reports whether it set up a new alias. Aliases are only used for packets
// written under c.mu, so the client always learns one before its use.
func (c *conn) aliasLocked(p *wire.Publish) bool {
	if c.aliasMax == 0 {
		return false
	}
	if a, ok := c.aliasOut[p.Topic]; ok {
		p.Props.TopicAlias = a
		p.Props.Set(wire.PropTopicAlias)
		p.Topic = ""
		return false
	}
	if len(c.aliasOut) >= int(c.aliasMax) {
		return false // all taken: the topic goes in full
	}
	if c.aliasOut == nil {
		c.aliasOut = map[string]uint16{}
	}
	a := uint16(len(c.aliasOut) + 1)
	c.aliasOut[p.Topic] = a
	p.Props.TopicAlias = a
	p.Props.Set(wire.PropTopicAlias)
	return true
}

// Cancelled implements broker.Consumer: the queue removed this consumer.
// The queue was deleted (an administrator's queue.delete or the HTTP API),
// or, for a queue held by another node of the cluster, that node no longer
// serves this consumer (it restarted, or the consumer's lease ran out while
// it was unreachable). Either way nothing comes from that queue any more
// and the session is not what the client thinks it is, so the connection
// ends: the client reconnects and re-attaches (or is refused with Server
// unavailable while the node is down, as a CONNECT resuming the session
// would be; or starts a new session where the queue was deleted), as
// RabbitMQ closes an MQTT connection whose queue was deleted. Before, the
// connection stayed up and silent: the client, answered its PINGs, never
// learned that it would receive nothing more.
//
// The 5.0 reason code: 0x98 Administrative action ("the Connection is
// closed due to an administrative action") when the queue is gone from
// the vhost — someone deleted it; else 0x80 Unspecified error, which the
// spec gives when "none of the other Reason Codes apply": the server the
// client is connected to is not shutting down (0x8B), busy (0x89) or
// moved (0x9D), and no one acted on the connection. A connection already
// ending (its teardown cancels its own consumers) or already kicked is left
// alone, and so is a subscriber the connection has already replaced or
// unsubscribed.
func (s *subscriber) Cancelled(q *broker.Queue) {
	c := s.c
	c.mu.Lock()
	current := c.sub == s
	for _, sh := range c.shared {
		current = current || sh == s
	}
	closed := c.closed
	c.mu.Unlock()
	if closed || !current {
		return
	}
	logged, code := kickQueueLost, byte(wire.UnspecifiedError)
	if c.vhost.LookupQueue(q.Name()) != q {
		logged, code = kickQueueDeleted, administrativeAction
	}
	if c.kickAs(logged, code) {
		c.warn("MQTT connection closed: its session's queue stopped delivering to it", "queue", q.Name(),
			"reason", kickReason(logged))
	}
}

// fromProps maps core message properties to 5.0 PUBLISH properties.
func fromProps(pr *wire.Properties, m *message.Message, clk clock.Clock) {
	if m.Props.ContentType != "" {
		pr.ContentType = m.Props.ContentType
		pr.Set(wire.PropContentType)
	}
	if m.Props.ReplyTo != "" && sendableTopic(keyToTopic(m.Props.ReplyTo)) {
		// An AMQP reply-to that is no topic name is left out, not the
		// message [MQTT-3.3.2-14].
		pr.ResponseTopic = keyToTopic(m.Props.ReplyTo)
		pr.Set(wire.PropResponseTopic)
	}
	if m.Props.CorrelationID != "" {
		pr.CorrelationData = []byte(m.Props.CorrelationID)
		pr.Set(wire.PropCorrelationData)
	} else if v, ok := m.Props.Headers[message.HeaderCorrelationID]; ok && m.Props.Ordered == nil {
		// An AMQP publisher's long correlation id, as RabbitMQ reads it.
		switch v := v.(type) {
		case string:
			pr.CorrelationData = []byte(v)
			pr.Set(wire.PropCorrelationData)
		case []byte:
			pr.CorrelationData = v
			pr.Set(wire.PropCorrelationData)
		}
	}
	if left, ok := expiryLeft(m, clk); ok {
		// What is left of it, not what it started with [MQTT-3.3.2-6],
		// rounded up as Mosquitto does: 1 s published is 1 s received.
		pr.MessageExpiry = uint32((max(left, 0) + time.Second - 1) / time.Second)
		pr.Set(wire.PropMessageExpiry)
	}
	if m.Origin.PayloadFormat != 0 {
		pr.PayloadFormat = m.Origin.PayloadFormat
		pr.Set(wire.PropPayloadFormat)
	}
	userProps(pr, m)
}

// userProps maps a message's headers to 5.0 user properties, in the order
// the publisher gave them: an MQTT publisher's list as it came (repeated
// names too), an AMQP publisher's field table in wire order. Only text
// values can be user properties; others are left out.
func userProps(pr *wire.Properties, m *message.Message) {
	add := func(k string, v any) {
		if s, ok := v.(string); ok && utf8.ValidString(k) && utf8.ValidString(s) {
			pr.User = append(pr.User, wire.UserProperty{Key: k, Value: s})
		}
	}
	switch {
	case m.Props.Ordered != nil:
		for _, h := range m.Props.Ordered {
			add(h.Key, h.Value)
		}
		if len(m.Props.Headers) > 0 {
			// What the broker added since (x-death, …), after them.
			var extra []string
			for k := range m.Props.Headers {
				if !slices.ContainsFunc(m.Props.Ordered, func(h message.Header) bool { return h.Key == k }) {
					extra = append(extra, k)
				}
			}
			sort.Strings(extra)
			for _, k := range extra {
				add(k, m.Props.Headers[k])
			}
		}
	case m.WireProps != nil:
		_ = message.EachHeader(m.WireProps, func(k string, v any) {
			if k == message.HeaderCorrelationID && m.Props.CorrelationID == "" {
				return // already the correlation data
			}
			add(k, v)
		})
	default:
		keys := make([]string, 0, len(m.Props.Headers))
		for k := range m.Props.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == message.HeaderCorrelationID && m.Props.CorrelationID == "" {
				continue
			}
			add(k, m.Props.Headers[k])
		}
	}
}

// expiryLeft is how long m has before it expires by clk (read only when m
// has an expiration); ok is false when it has none.
func expiryLeft(m *message.Message, clk clock.Clock) (left time.Duration, ok bool) {
	if m.Props.Expiration == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(m.Props.Expiration, 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(ms)*time.Millisecond - clk.Now().Sub(time.Unix(0, m.Published)), true
}

// expired reports whether m's expiry interval has passed: it must not be
// sent [MQTT-3.3.2-5].
func expired(m *message.Message, clk clock.Clock) bool {
	left, ok := expiryLeft(m, clk)
	return ok && left <= 0
}

// allocPIDLocked returns a packet identifier not in use [MQTT-2.2.1-3],
// for deliveries not from the session queue (retained messages, shared
// subscriptions). It counts down from 65535, away from the ids the session
// queue's first sequence numbers give (pidForSeq), so the two rarely meet.
func (c *conn) allocPIDLocked() uint16 {
	for {
		c.nextPID--
		if c.nextPID == 0 {
			c.nextPID = 65535
		}
		if _, busy := c.inflight[c.nextPID]; !busy {
			return c.nextPID
		}
	}
}

// ack handles PUBACK, PUBREC, PUBREL and PUBCOMP from the client.
func (c *conn) ack(a *wire.Ack) error {
	switch a.Kind {
	case wire.PUBREL: // inbound QoS 2, step 3
		pid := a.PacketID
		c.acks.release(pid, func(known bool, err error) {
			if err != nil {
				// The id's removal is not durable: no PUBCOMP; the client
				// sends the PUBREL again on its next connection.
				c.logger().Error("removing an inbound QoS 2 packet id failed", "err", err)
				c.kick(wire.UnspecifiedError)
				return
			}
			rc := wire.Success
			if !known {
				rc = wire.PacketIDNotFound
			}
			resp := &wire.Ack{Kind: wire.PUBCOMP, PacketID: pid}
			if c.v == wire.V5 {
				resp.ReasonCode = rc
				c.explain(&resp.Props, rc)
			}
			c.send(resp)
		})
		return nil
	case wire.PUBREC: // outbound QoS 2, step 2
		if a.ReasonCode >= 0x80 {
			// The client refused the message: it is done with it.
			c.finishOutbound(a.PacketID)
			return nil
		}
		c.mu.Lock()
		of := c.inflight[a.PacketID]
		known := of != nil && of.qos == 2
		if known {
			of.released = true
		}
		sess, sub := c.sess, c.sub
		record := known && sess != nil && of.stored && sub != nil && of.d.Queue == sub.q
		if record {
			of.recorded = true
		}
		c.mu.Unlock()
		resp := &wire.Ack{Kind: wire.PUBREL, PacketID: a.PacketID}
		if of == nil && c.v == wire.V5 {
			resp.ReasonCode = wire.PacketIDNotFound
		}
		if record {
			// The session keeps the PUBREC (durably for a durable
			// session) before the PUBREL goes: after it, the PUBLISH
			// must never go again, not even after a restart. Once the
			// record is durable the queue message is acked: the PUBREL
			// obligation lives in the record alone, so the message's
			// expiry, a max-length drop or a purge cannot lose it.
			//
			// In a cluster the record is this node's alone, and the
			// session may resume on another node, which has none: had
			// the message been acked, that node would send neither the
			// PUBREL nor the PUBLISH, and the message would be lost. So
			// there the message stays unacked until the PUBCOMP
			// (finishOutbound acks it): a connection lost before it
			// requeues it, this node's next connection of the session
			// settles it from the record (TryDeliver) and sends the
			// PUBREL, and another node sends the PUBLISH again (DUP; its
			// packet id follows that node's delivery numbering, so the
			// client may take it for a new message): at least once
			// across nodes, never lost (docs/clustering.md says what is
			// guaranteed).
			keep := c.srv.cfg.Cluster != nil
			seq := of.d.Seq
			c.srv.sessions.release(c.clientID, sess, c.id, of.d.Queue.ID(), seq, of.d.Msg.Published,
				completionFunc(func(_ uint64, err error) {
					if err != nil {
						// Not recorded: no PUBREL (after it the PUBLISH
						// must never go again). The connection ends; the
						// message goes back to the queue and its PUBLISH
						// is resent, DUP, to the next connection.
						c.logger().Error("recording a PUBREC failed", "err", err)
						c.kick(wire.UnspecifiedError)
						return
					}
					c.mu.Lock()
					mine := !keep && !c.closed && c.inflight[a.PacketID] == of && of.stored
					if mine {
						of.stored = false // acked here, not at PUBCOMP nor requeued
					}
					c.mu.Unlock()
					if mine {
						of.d.Queue.Ack(of.d)
					}
					c.send(resp)
				}), 0)
			return nil
		}
		c.send(resp)
		return nil
	case wire.PUBACK, wire.PUBCOMP: // outbound QoS 1 done / QoS 2 step 4
		c.finishOutbound(a.PacketID)
		return nil
	}
	return nil
}

// finishOutbound settles a delivery the client has acknowledged.
func (c *conn) finishOutbound(pid uint16) {
	c.mu.Lock()
	of := c.inflight[pid]
	delete(c.inflight, pid)
	var stored, recorded bool
	if of != nil {
		stored, recorded = of.stored, of.recorded
	}
	sess := c.sess
	// A freed in-flight slot (or packet id) may let through a delivery
	// that was refused for want of one. Only then is it worth asking the
	// queues: a subscriber keeping up never filled its window, and a
	// redispatch per PUBACK was a slice and a queue lock per message.
	wanted := c.roomWanted
	c.roomWanted = false
	c.mu.Unlock()
	if stored {
		of.d.Queue.Ack(of.d)
	}
	if recorded && sess != nil {
		c.srv.sessions.complete(c.clientID, sess, of.d.Seq) // after the ack: see complete
	}
	if wanted {
		c.redispatch()
	}
}

// resendReleased sends PUBREL, right after CONNACK, for every message of
// the resumed session whose PUBREC was recorded [MQTT-4.4.0-1], whether
// or not the session queue still holds it, and keeps its packet id busy
// until the PUBCOMP.
func (c *conn) resendReleased() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return
	}
	for _, seq := range c.sess.releasedSeqs() {
		pid := pidForSeq(seq)
		if _, busy := c.inflight[pid]; busy {
			continue // two records, one id (65535 seqs apart): the next resume sends it
		}
		c.send(&wire.Ack{Kind: wire.PUBREL, PacketID: pid})
		put(&c.inflight, pid, &outflight{d: broker.Delivery{Seq: seq}, qos: 2, released: true, recorded: true})
	}
}

// redispatch asks the connection's queues to deliver again (in-flight
// room or outbox room came back).
func (c *conn) redispatch() {
	c.mu.Lock()
	queues := make([]*broker.Queue, 0, 1+len(c.shared))
	if c.sub != nil {
		queues = append(queues, c.sub.q)
	}
	for _, s := range c.shared {
		queues = append(queues, s.q)
	}
	c.mu.Unlock()
	for _, q := range queues {
		q.Dispatch()
	}
}
