package message

import (
	"encoding/binary"
	"sort"
)

// The properties section of a record is AMQP 0-9-1 basic properties,
// byte for byte (a 16-bit flags word, then each present property in flag
// order): the AMQP adapter delivers a stored message's section as it is,
// and keeps an AMQP publisher's bytes as Message.WireProps to store them
// as they are.
const (
	flagContentType     uint16 = 1 << 15
	flagContentEncoding uint16 = 1 << 14
	flagHeaders         uint16 = 1 << 13
	flagDeliveryMode    uint16 = 1 << 12
	flagPriority        uint16 = 1 << 11
	flagCorrelationID   uint16 = 1 << 10
	flagReplyTo         uint16 = 1 << 9
	flagExpiration      uint16 = 1 << 8
	flagMessageID       uint16 = 1 << 7
	flagTimestamp       uint16 = 1 << 6
	flagType            uint16 = 1 << 5
	flagUserID          uint16 = 1 << 4
	flagAppID           uint16 = 1 << 3
	flagClusterID       uint16 = 1 << 2
	flagContinued       uint16 = 1
)

// HeaderCorrelationID carries a correlation id longer than an AMQP short
// string allows (MQTT 5 correlation data), as RabbitMQ does.
const HeaderCorrelationID = "x-correlation-id"

// AppendProperties encodes p as AMQP basic properties (flags included),
// with a flag for every property that has a value. Ordered headers keep
// their order, each name once (its first value: an AMQP table must not
// repeat a name, and RabbitMQ keeps the first); names longer than 255
// bytes are left out, as RabbitMQ does. A correlation id over 255 bytes
// goes in the header x-correlation-id instead.
func AppendProperties(buf []byte, p *Properties) []byte {
	var flags uint16
	set := func(flag uint16, present bool) {
		if present {
			flags |= flag
		}
	}
	longCorr := len(p.CorrelationID) > 255
	set(flagContentType, p.ContentType != "")
	set(flagContentEncoding, p.ContentEncoding != "")
	set(flagHeaders, p.Headers != nil || p.Ordered != nil || longCorr)
	set(flagDeliveryMode, p.DeliveryMode != 0)
	set(flagPriority, p.Priority != 0)
	set(flagCorrelationID, p.CorrelationID != "" && !longCorr)
	set(flagReplyTo, p.ReplyTo != "")
	set(flagExpiration, p.Expiration != "")
	set(flagMessageID, p.MessageID != "")
	set(flagTimestamp, !p.Timestamp.IsZero())
	set(flagType, p.Type != "")
	set(flagUserID, p.UserID != "")
	set(flagAppID, p.AppID != "")
	set(flagClusterID, p.ClusterID != "")
	buf = binary.BigEndian.AppendUint16(buf, flags)
	if flags&flagContentType != 0 {
		buf = appendShortstr(buf, p.ContentType)
	}
	if flags&flagContentEncoding != 0 {
		buf = appendShortstr(buf, p.ContentEncoding)
	}
	if flags&flagHeaders != 0 {
		if p.Ordered == nil && !longCorr {
			buf = AppendTable(buf, p.Headers)
		} else {
			buf = appendOrderedHeaders(buf, p, longCorr)
		}
	}
	if flags&flagDeliveryMode != 0 {
		buf = append(buf, p.DeliveryMode)
	}
	if flags&flagPriority != 0 {
		buf = append(buf, p.Priority)
	}
	if flags&flagCorrelationID != 0 {
		buf = appendShortstr(buf, p.CorrelationID)
	}
	if flags&flagReplyTo != 0 {
		buf = appendShortstr(buf, p.ReplyTo)
	}
	if flags&flagExpiration != 0 {
		buf = appendShortstr(buf, p.Expiration)
	}
	if flags&flagMessageID != 0 {
		buf = appendShortstr(buf, p.MessageID)
	}
	if flags&flagTimestamp != 0 {
		buf = binary.BigEndian.AppendUint64(buf, uint64(p.Timestamp.Unix()))
	}
	if flags&flagType != 0 {
		buf = appendShortstr(buf, p.Type)
	}
	if flags&flagUserID != 0 {
		buf = appendShortstr(buf, p.UserID)
	}
	if flags&flagAppID != 0 {
		buf = appendShortstr(buf, p.AppID)
	}
	if flags&flagClusterID != 0 {
		buf = appendShortstr(buf, p.ClusterID)
	}
	return buf
}

// appendShortstr appends a short string, cut to 255 bytes.
func appendShortstr(buf []byte, s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	return append(append(buf, byte(len(s))), s...)
}

// appendOrderedHeaders appends the headers field table: p.Ordered's names
// in order (each once, with the map's value where the map has it), then
// the map's other names sorted, then x-correlation-id for a long
// correlation id.
func appendOrderedHeaders(buf []byte, p *Properties, longCorr bool) []byte {
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	listed := 0
	for i, h := range p.Ordered {
		if len(h.Key) > 255 || seenBefore(p.Ordered[:i], h.Key) {
			continue
		}
		v := h.Value
		if p.Headers != nil {
			mv, ok := p.Headers[h.Key]
			if !ok {
				continue // removed since it was published
			}
			v = mv
			listed++
		}
		buf = AppendField(buf, h.Key, v)
	}
	if len(p.Headers) > listed {
		var extra []string
		for k := range p.Headers {
			if !seenBefore(p.Ordered, k) {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			buf = AppendField(buf, k, p.Headers[k])
		}
	}
	if longCorr && !seenBefore(p.Ordered, HeaderCorrelationID) && p.Headers[HeaderCorrelationID] == nil {
		buf = AppendField(buf, HeaderCorrelationID, p.CorrelationID)
	}
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

func seenBefore(hs []Header, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

// DecodeProperties decodes AMQP basic properties (flags first), as
// AppendProperties writes them. Ordered stays nil: the section keeps each
// header name once.
func DecodeProperties(b []byte) (Properties, error) {
	r := reader{buf: b}
	var p Properties
	flags := r.short()
	if flags&flagContinued != 0 {
		r.fail("continued property flags are not supported")
	}
	str := func(flag uint16, dst *string) {
		if flags&flag != 0 {
			*dst = r.shortstr()
		}
	}
	str(flagContentType, &p.ContentType)
	str(flagContentEncoding, &p.ContentEncoding)
	if flags&flagHeaders != 0 {
		raw := r.longstrBytes()
		if r.err == nil {
			t, err := DecodeTable(raw)
			if err != nil {
				return Properties{}, err
			}
			p.Headers = t
		}
	}
	if flags&flagDeliveryMode != 0 {
		p.DeliveryMode = r.octet()
	}
	if flags&flagPriority != 0 {
		p.Priority = r.octet()
	}
	str(flagCorrelationID, &p.CorrelationID)
	str(flagReplyTo, &p.ReplyTo)
	str(flagExpiration, &p.Expiration)
	str(flagMessageID, &p.MessageID)
	if flags&flagTimestamp != 0 {
		p.Timestamp = r.timestamp()
	}
	str(flagType, &p.Type)
	str(flagUserID, &p.UserID)
	str(flagAppID, &p.AppID)
	str(flagClusterID, &p.ClusterID)
	if r.err != nil {
		return Properties{}, r.err
	}
	return p, nil
}

// EachHeader calls fn for each header in encoded AMQP basic properties, in
// the order the publisher wrote them.
func EachHeader(wireProps []byte, fn func(key string, v any)) error {
	r := reader{buf: wireProps}
	flags := r.short()
	if flags&flagContentType != 0 {
		r.shortstr()
	}
	if flags&flagContentEncoding != 0 {
		r.shortstr()
	}
	if flags&flagHeaders == 0 {
		return r.err
	}
	raw := r.longstrBytes()
	if r.err != nil {
		return r.err
	}
	return EachField(raw, fn)
}

// WireProperties appends m's encoded AMQP properties: the bytes it arrived
// with when they are kept, else a fresh encoding.
func WireProperties(buf []byte, m *Message) []byte {
	if m.WireProps != nil {
		return append(buf, m.WireProps...)
	}
	return AppendProperties(buf, &m.Props)
}
