package mqtt

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Packet types.
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
	AUTH        byte = 15
)

// Protocol levels.
const (
	V31  byte = 3 // MQTT 3.1 ("MQIsdp")
	V311 byte = 4
	V5   byte = 5
)

// Packet is any control packet.
type Packet interface {
	// Type is the packet type (CONNECT …).
	Type() byte
	// Append encodes the packet for protocol level v.
	Append(b []byte, v byte) []byte
}

// Connect is CONNECT.
type Connect struct {
	ProtocolName string
	Level        byte
	CleanStart   bool
	KeepAlive    uint16
	Props        Properties
	ClientID     string
	Will         bool
	WillQoS      byte
	WillRetain   bool
	WillProps    Properties
	WillTopic    string
	WillPayload  []byte
	HasUsername  bool
	Username     string
	HasPassword  bool
	Password     []byte
}

// Connack is CONNACK.
type Connack struct {
	SessionPresent bool
	ReasonCode     byte // 5.0 reason code; mapped to a 3.1.1 return code when encoding for 3.1.1
	Props          Properties
}

// Publish is PUBLISH.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string
	PacketID uint16
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP.
type Ack struct {
	Kind       byte
	PacketID   uint16
	ReasonCode byte
	Props      Properties
}

// Subscription is one filter of a SUBSCRIBE.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
}

// Subscribe is SUBSCRIBE.
type Subscribe struct {
	PacketID uint16
	Props    Properties
	Subs     []Subscription
}

// Suback is SUBACK.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte
}

// Unsubscribe is UNSUBSCRIBE.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is UNSUBACK.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte // 5.0 only
}

// Pingreq is PINGREQ.
type Pingreq struct{}

// Pingresp is PINGRESP.
type Pingresp struct{}

// Disconnect is DISCONNECT.
type Disconnect struct {
	ReasonCode byte
	Props      Properties
}

// Auth is AUTH (5.0).
type Auth struct {
	ReasonCode byte
	Props      Properties
}

func (*Connect) Type() byte     { return CONNECT }
func (*Connack) Type() byte     { return CONNACK }
func (*Publish) Type() byte     { return PUBLISH }
func (a *Ack) Type() byte       { return a.Kind }
func (*Subscribe) Type() byte   { return SUBSCRIBE }
func (*Suback) Type() byte      { return SUBACK }
func (*Unsubscribe) Type() byte { return UNSUBSCRIBE }
func (*Unsuback) Type() byte    { return UNSUBACK }
func (*Pingreq) Type() byte     { return PINGREQ }
func (*Pingresp) Type() byte    { return PINGRESP }
func (*Disconnect) Type() byte  { return DISCONNECT }
func (*Auth) Type() byte        { return AUTH }

// Reader reads packets from a stream.
type Reader struct {
	r *bufio.Reader
	// MaxSize bounds a packet's total size (fixed header included); larger
	// packets fail with PacketTooLarge. 0 means the protocol's maximum.
	MaxSize int
	buf     []byte
}

// NewReader returns a packet reader over r.
func NewReader(r *bufio.Reader, maxSize int) *Reader { return &Reader{r: r, MaxSize: maxSize} }

// Buffered reports bytes already read from the socket and not yet decoded.
func (rd *Reader) Buffered() int { return rd.r.Buffered() }

// ReadPacket reads one packet. v is the connection's protocol level (0
// before CONNECT: the CONNECT packet says). Errors are *Error for protocol
// violations and io errors otherwise.
func (rd *Reader) ReadPacket(v byte) (Packet, error) {
	first, err := rd.r.ReadByte()
	if err != nil {
		return nil, err
	}
	var length uint32
	for i := 0; ; i++ {
		c, err := rd.r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		length |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			break
		}
		if i == 3 {
			return nil, malformed("remaining length longer than 4 bytes")
		}
	}
	if rd.MaxSize > 0 && int(length)+1+varintLen(length) > rd.MaxSize {
		return nil, &Error{Code: PacketTooLarge, Msg: fmt.Sprintf("packet of %d bytes, limit %d", length, rd.MaxSize)}
	}
	if cap(rd.buf) < int(length) {
		rd.buf = make([]byte, length)
	}
	body := rd.buf[:length]
	if _, err := io.ReadFull(rd.r, body); err != nil {
		return nil, noEOF(err)
	}
	return Decode(first, body, v)
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Decode decodes a packet from its first byte and body. Byte slices in the
// result are copies; the body may be reused.
func Decode(first byte, body []byte, v byte) (Packet, error) {
	typ, flags := first>>4, first&0x0f
	d := &dec{b: body}
	// Fixed-header flags are reserved except for PUBLISH [MQTT-2.1.3-1].
	want := byte(0)
	if typ == PUBREL || typ == SUBSCRIBE || typ == UNSUBSCRIBE {
		want = 2
	}
	if typ != PUBLISH && flags != want {
		return nil, malformed("packet type %d with flags 0x%x", typ, flags)
	}
	var p Packet
	switch typ {
	case CONNECT:
		p = decodeConnect(d)
	case CONNACK:
		c := &Connack{}
		ack := d.byte1()
		if ack&0xFE != 0 {
			d.fail(malformed("reserved CONNACK flags set")) // [MQTT-3.2.2-1]
		}
		c.SessionPresent = ack&1 != 0
		c.ReasonCode = d.byte1()
		if v == V5 {
			if d.remaining() > 0 {
				d.properties(&c.Props)
			}
		} else if d.err == nil {
			rc, ok := v3ToReason[c.ReasonCode]
			if !ok {
				d.fail(malformed("CONNACK return code %d", c.ReasonCode))
			}
			c.ReasonCode = rc
		}
		p = c
	case PUBLISH:
		p = decodePublish(d, flags, v)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		a := &Ack{Kind: typ, PacketID: d.u16()}
		if v == V5 && d.remaining() > 0 {
			a.ReasonCode = d.byte1()
			if d.remaining() > 0 {
				d.properties(&a.Props)
			}
		}
		p = a
	case SUBSCRIBE:
		p = decodeSubscribe(d, v)
	case SUBACK:
		s := &Suback{PacketID: d.u16()}
		if v == V5 {
			d.properties(&s.Props)
		}
		s.ReasonCodes = append([]byte(nil), d.take(d.remaining())...)
		p = s
	case UNSUBSCRIBE:
		u := &Unsubscribe{PacketID: d.u16()}
		if v == V5 {
			d.properties(&u.Props)
		}
		for d.remaining() > 0 && d.err == nil {
			u.Filters = append(u.Filters, d.str())
		}
		if len(u.Filters) == 0 && d.err == nil {
			d.fail(protocolErr("UNSUBSCRIBE without a filter")) // [MQTT-3.10.3-2]
		}
		p = u
	case UNSUBACK:
		u := &Unsuback{PacketID: d.u16()}
		if v == V5 {
			d.properties(&u.Props)
			u.ReasonCodes = append([]byte(nil), d.take(d.remaining())...)
		}
		p = u
	case PINGREQ:
		p = &Pingreq{}
	case PINGRESP:
		p = &Pingresp{}
	case DISCONNECT:
		dc := &Disconnect{}
		if v == V5 && d.remaining() > 0 {
			dc.ReasonCode = d.byte1()
			if d.remaining() > 0 {
				d.properties(&dc.Props)
			}
		}
		p = dc
	case AUTH:
		if v != V5 {
			return nil, protocolErr("AUTH before MQTT 5")
		}
		a := &Auth{}
		if d.remaining() > 0 {
			a.ReasonCode = d.byte1()
			if d.remaining() > 0 {
				d.properties(&a.Props)
			}
		}
		p = a
	default:
		return nil, malformed("reserved packet type %d", typ)
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.remaining() != 0 {
		return nil, malformed("%d trailing bytes in packet type %d", d.remaining(), typ)
	}
	return p, nil
}

func decodeConnect(d *dec) *Connect {
	c := &Connect{}
	c.ProtocolName = d.str()
	c.Level = d.byte1()
	if d.err != nil {
		return c
	}
	switch {
	case c.ProtocolName == "MQTT" && (c.Level == V311 || c.Level == V5):
	case c.ProtocolName == "MQIsdp" && c.Level == V31:
	default:
		// [MQTT-3.1.2-2]: answered with CONNACK 0x84 / 3.1.1 code 1.
		d.fail(&Error{Code: UnsupportedProtocol, Msg: fmt.Sprintf("protocol %q level %d", c.ProtocolName, c.Level)})
		return c
	}
	flags := d.byte1()
	if flags&1 != 0 {
		d.fail(malformed("reserved CONNECT flag set")) // [MQTT-3.1.2-3]
	}
	c.CleanStart = flags&0x02 != 0
	c.Will = flags&0x04 != 0
	c.WillQoS = flags >> 3 & 3
	c.WillRetain = flags&0x20 != 0
	c.HasPassword = flags&0x40 != 0
	c.HasUsername = flags&0x80 != 0
	if c.WillQoS == 3 {
		d.fail(malformed("will QoS 3")) // [MQTT-3.1.2-14]
	}
	if !c.Will && (c.WillQoS != 0 || c.WillRetain) {
		d.fail(malformed("will QoS or retain without a will")) // [MQTT-3.1.2-13, -15]
	}
	if c.Level != V5 && c.HasPassword && !c.HasUsername {
		d.fail(malformed("password without user name")) // 3.1.1 [MQTT-3.1.2-22]
	}
	c.KeepAlive = d.u16()
	if c.Level == V5 {
		d.properties(&c.Props)
	}
	c.ClientID = d.str()
	if c.Will {
		if c.Level == V5 {
			d.properties(&c.WillProps)
		}
		c.WillTopic = d.str()
		c.WillPayload = append([]byte(nil), d.binary()...)
		if d.err == nil {
			if err := ValidTopic(c.WillTopic); err != nil {
				d.fail(err)
			}
		}
	}
	if c.HasUsername {
		c.Username = d.str()
	}
	if c.HasPassword {
		c.Password = append([]byte(nil), d.binary()...)
	}
	return c
}

func decodePublish(d *dec, flags, v byte) *Publish {
	p := &Publish{}
	decodePublishInto(d, p, flags, v)
	return p
}

// DecodePublishInto is Decode for a PUBLISH into a Publish the caller
// reuses (a reader decoding a stream of them): p is overwritten whole. The
// payload is a copy, as Decode's.
func DecodePublishInto(p *Publish, first byte, body []byte, v byte) error {
	*p = Publish{}
	if first>>4 != PUBLISH {
		return malformed("packet type %d is not PUBLISH", first>>4)
	}
	d := dec{b: body}
	decodePublishInto(&d, p, first&0x0f, v)
	if d.err != nil {
		return d.err
	}
	return nil
}

func decodePublishInto(d *dec, p *Publish, flags, v byte) {
	*p = Publish{Dup: flags&8 != 0, QoS: flags >> 1 & 3, Retain: flags&1 != 0}
	if p.QoS == 3 {
		d.fail(malformed("PUBLISH with QoS 3")) // [MQTT-3.3.1-4]
		return
	}
	if p.QoS == 0 && p.Dup {
		d.fail(malformed("DUP set on QoS 0")) // [MQTT-3.3.1-2]
		return
	}
	p.Topic = d.str()
	if p.QoS > 0 {
		p.PacketID = d.u16()
		if p.PacketID == 0 && d.err == nil {
			d.fail(malformed("packet identifier 0")) // [MQTT-2.2.1-3]
		}
	}
	if v == V5 {
		d.properties(&p.Props)
	}
	if d.err == nil && (p.Topic != "" || v != V5) {
		if err := ValidTopic(p.Topic); err != nil {
			d.fail(err)
		}
	}
	p.Payload = append([]byte(nil), d.take(d.remaining())...)
}

func decodeSubscribe(d *dec, v byte) *Subscribe {
	s := &Subscribe{PacketID: d.u16()}
	if s.PacketID == 0 && d.err == nil {
		d.fail(malformed("packet identifier 0"))
	}
	if v == V5 {
		d.properties(&s.Props)
	}
	for d.remaining() > 0 && d.err == nil {
		f := d.str()
		opts := d.byte1()
		sub := Subscription{Filter: f, QoS: opts & 3, NoLocal: opts&4 != 0, RetainAsPublished: opts&8 != 0, RetainHandling: opts >> 4 & 3}
		if sub.QoS == 3 || sub.RetainHandling == 3 || opts&0xC0 != 0 || (v != V5 && opts&0xFC != 0) {
			d.fail(malformed("invalid subscription options 0x%02x", opts)) // [MQTT-3.8.3-4, -5]
		}
		s.Subs = append(s.Subs, sub)
	}
	if len(s.Subs) == 0 && d.err == nil {
		d.fail(protocolErr("SUBSCRIBE without a filter")) // [MQTT-3.8.3-2]
	}
	return s
}

// ValidTopic checks a topic name: not empty, no wildcards [MQTT-4.7.3-1,
// MQTT-3.3.2-2].
func ValidTopic(t string) *Error {
	if t == "" {
		return &Error{Code: TopicNameInvalid, Msg: "empty topic"}
	}
	if strings.ContainsAny(t, "+#") {
		return &Error{Code: TopicNameInvalid, Msg: fmt.Sprintf("wildcard in topic %q", t)}
	}
	return nil
}

// ValidFilter checks a topic filter: '#' only last and alone in its level,
// '+' alone in its level [MQTT-4.7.1-1, -2].
func ValidFilter(f string) *Error {
	if f == "" {
		return &Error{Code: TopicFilterInvalid, Msg: "empty filter"}
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return &Error{Code: TopicFilterInvalid, Msg: fmt.Sprintf("misplaced # in %q", f)}
		}
		if strings.Contains(l, "+") && l != "+" {
			return &Error{Code: TopicFilterInvalid, Msg: fmt.Sprintf("misplaced + in %q", f)}
		}
	}
	return nil
}
