package broker

import (
	"strconv"
	"time"
)

// Header is one application header: an AMQP field-table entry or an MQTT
// 5 user property.
type Header struct {
	Key   string
	Value any
}

// Properties are a message's properties, the AMQP basic properties that MQTT
// and other adapters map onto.
type Properties struct {
	ContentType     string
	ContentEncoding string
	// Headers are the application headers by name, for lookups (headers
	// exchange, x-death, x-delay, …).
	Headers map[string]any
	// Ordered, when not nil, is the headers as the publisher sent them: in
	// order and with repeated names, which MQTT 5 user properties allow and
	// must keep [MQTT-3.3.2-17, -18]. Headers then holds the first value of
	// each name, plus what the broker added (x-death, …); encoders write
	// Ordered's names first, in order, then the others. AMQP publishes
	// leave it nil: their order is kept in WireProps. (The ordered list is
	// the protocol-neutral form; the map is the lookup view.)
	Ordered      []Header
	DeliveryMode uint8 // 2 = persistent
	Priority     uint8
	// CorrelationID may exceed the 255 bytes of an AMQP short string (MQTT
	// 5 correlation data); AMQP consumers then find it in the header
	// x-correlation-id, as RabbitMQ does.
	CorrelationID string
	ReplyTo       string
	Expiration    string // per-message TTL in milliseconds, as text
	MessageID     string
	Timestamp     time.Time
	Type          string
	UserID        string
	AppID         string
	ClusterID     string
}

// Message is an immutable published message. One Message is shared by every
// queue it is routed to; the core copies it before changing anything
// (dead-lettering).
type Message struct {
	Exchange   string
	RoutingKey string
	Props      Properties
	Body       []byte
	// Published is when the broker accepted the message (UnixNano); TTLs
	// count from it.
	Published int64
	// WireProps is the encoded form of Props kept by the adapter that
	// received the message, so delivering it through the same protocol need
	// not re-encode. Nil means encode from Props.
	WireProps []byte
	// Origin is what the broker knows of the publish beyond the message's
	// properties. It lives here, never in Headers, so no client can forge
	// it with a header of the same name.
	Origin Origin
}

// Origin describes how a message was published, for adapters that deliver
// it: the MQTT publish's QoS and retain flag, and its client for no-local.
type Origin struct {
	// ClientID is the publishing MQTT client's id (no-local subscriptions
	// skip its own messages); "" for other protocols.
	ClientID string
	// MQTT reports a publish over MQTT: QoS and Retain are its flags.
	MQTT   bool
	QoS    uint8
	Retain bool
	// PayloadFormat is the MQTT 5 payload format indicator: 1 for UTF-8
	// text, 0 unspecified.
	PayloadFormat uint8
}

// Persistent reports delivery-mode 2.
func (m *Message) Persistent() bool { return m.Props.DeliveryMode == 2 }

// Size is the accounted size of the message: its body, as RabbitMQ counts
// for x-max-length-bytes.
func (m *Message) Size() int64 { return int64(len(m.Body)) }

// perMessageTTL parses the expiration property (milliseconds as a decimal
// string). ok is false when it is absent.
func (m *Message) perMessageTTL() (ttl time.Duration, ok bool, err error) {
	if m.Props.Expiration == "" {
		return 0, false, nil
	}
	ms, err := strconv.ParseInt(m.Props.Expiration, 10, 64)
	if err != nil || ms < 0 {
		return 0, false, errorf(KindPreconditionFailed, "invalid expiration '%s'", m.Props.Expiration)
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// ValidateExpiration checks the expiration property before publishing, as
// RabbitMQ does (a bad value closes the channel with 406).
func (m *Message) ValidateExpiration() error {
	_, _, err := m.perMessageTTL()
	return err
}

// Delivery is a message handed to a consumer or to basic.get.
type Delivery struct {
	Queue       *Queue
	Msg         *Message
	Seq         uint64 // the queue's sequence number, used to ack/requeue
	Redelivered bool
	// Remaining is the ready count left in the queue (for basic.get-ok and
	// for consumers judging how far behind they are).
	Remaining int

	persisted  bool   // the message is in the queue's log
	streamName string // a named stream consumer's delivery: acks store its offset
}
