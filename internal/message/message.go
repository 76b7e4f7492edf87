package message

import (
	"fmt"
	"strconv"
	"time"
)

// Header is one application header: an AMQP field-table entry or an MQTT
// 5 user property.
type Header struct {
	Key   string
	Value any
}

// Properties are a message's properties in a protocol-neutral form: the
// AMQP basic properties, which MQTT 5 and other adapters map onto.
type Properties struct {
	ContentType     string
	ContentEncoding string
	// Headers are the application headers by name, for lookups (headers
	// exchange, x-death, x-delay, …). Values are field values (see
	// AppendTable for the types).
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
	// WireProps is an opaque per-protocol cache: Props as encoded AMQP
	// basic properties (the same bytes as a record's properties section),
	// kept by the AMQP adapter or the record decoder so that delivering
	// through AMQP copies them instead of re-encoding (a measured win on
	// the publish path). Nil means encode from Props; whoever changes Props
	// on a copy must clear it. Nothing but encoders reads it, and Props
	// stays the truth.
	WireProps []byte
	// Origin is what the broker knows of the publish beyond the message's
	// properties. It lives here, never in Headers, so no client can forge
	// it with a header of the same name.
	Origin Origin
	// Batch is opaque to the core: the adapter whose reader published the
	// message may use it to write the deliveries the message causes
	// itself, after the read (internal/mqtt/batch.go). Never stored.
	Batch any
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

// TTL parses the expiration property: a per-message time to live in
// milliseconds, as a decimal string. ok is false when it is absent; an
// error reports a value that is not a non-negative integer.
func (m *Message) TTL() (ttl time.Duration, ok bool, err error) {
	if m.Props.Expiration == "" {
		return 0, false, nil
	}
	ms, err := strconv.ParseInt(m.Props.Expiration, 10, 64)
	if err != nil || ms < 0 {
		return 0, false, fmt.Errorf("message: invalid expiration %q", m.Props.Expiration)
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}
