package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt reports a stored message that does not decode.
var ErrCorrupt = errors.New("message: corrupt message record")

// ErrNotStored reports a message whose write to storage failed (a full
// disk, an I/O error): its publisher was told (a nack, an MQTT error
// code), and a queue that still lists it drops it quietly when it gets
// there, instead of logging a lost message.
var ErrNotStored = errors.New("message: the message was refused by storage and is not stored")

// AppendMessage appends the stored form of m:
//
//	published int64 (UnixNano) | exchange shortstr | routing key shortstr |
//	properties length uint32 | AMQP basic properties (flags first) |
//	body length uint32 | body | [extension]
//
// Integers are big-endian, like the rest of AMQP. The extension (see
// appendExtension) is present only for messages with an Origin, ordered
// headers or a long correlation id; records without it are the format of
// earlier versions and still decode.
func AppendMessage(buf []byte, m *Message) []byte {
	buf = binary.BigEndian.AppendUint64(buf, uint64(m.Published))
	buf = appendShortstr(buf, m.Exchange)
	buf = appendShortstr(buf, m.RoutingKey)
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = WireProperties(buf, m)
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(m.Body)))
	buf = append(buf, m.Body...)
	return appendExtension(buf, m)
}

// DecodeMessage decodes a stored message. The message's body and encoded
// properties alias b, which the caller must not reuse.
func DecodeMessage(b []byte) (*Message, error) {
	r := reader{buf: b}
	published := int64(r.longlong())
	exchange := r.shortstr()
	key := r.shortstr()
	props := r.longstrBytes()
	body := r.longstrBytes()
	if r.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	p, err := DecodeProperties(props)
	if err != nil {
		return nil, fmt.Errorf("%w: properties: %v", ErrCorrupt, err)
	}
	m := &Message{
		Exchange:   exchange,
		RoutingKey: key,
		Props:      p,
		Body:       body,
		Published:  published,
		WireProps:  props,
	}
	if ext := r.remaining(); len(ext) != 0 {
		if err := decodeExtension(ext, m); err != nil {
			return nil, err
		}
	} else {
		upgradeLegacyMQTT(m)
	}
	return m, nil
}
