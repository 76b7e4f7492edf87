package codec

import (
	"encoding/binary"
	"sort"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// FromWire converts decoded AMQP basic properties to the core's.
func FromWire(p *amqp091.Properties) broker.Properties {
	return broker.Properties{
		ContentType:     p.ContentType,
		ContentEncoding: p.ContentEncoding,
		Headers:         p.Headers,
		DeliveryMode:    p.DeliveryMode,
		Priority:        p.Priority,
		CorrelationID:   p.CorrelationID,
		ReplyTo:         p.ReplyTo,
		Expiration:      p.Expiration,
		MessageID:       p.MessageID,
		Timestamp:       p.Timestamp,
		Type:            p.Type,
		UserID:          p.UserID,
		AppID:           p.AppID,
		ClusterID:       p.ClusterID,
	}
}

// HeaderCorrelationID carries a correlation id longer than an AMQP short
// string allows (MQTT 5 correlation data), as RabbitMQ does.
const HeaderCorrelationID = "x-correlation-id"

// AppendProperties encodes core properties as AMQP basic properties (flags
// included), with a flag for every property that has a value. Ordered
// headers keep their order, each name once (its first value: an AMQP table
// must not repeat a name, and RabbitMQ keeps the first); names longer than
// 255 bytes are left out, as RabbitMQ does. A correlation id over 255
// bytes goes in the header x-correlation-id instead.
func AppendProperties(buf []byte, p *broker.Properties) []byte {
	var w amqp091.Properties
	set := func(flag uint16, present bool) {
		if present {
			w.Flags |= flag
		}
	}
	w.ContentType, w.ContentEncoding, w.Headers = p.ContentType, p.ContentEncoding, p.Headers
	w.DeliveryMode, w.Priority, w.CorrelationID, w.ReplyTo = p.DeliveryMode, p.Priority, p.CorrelationID, p.ReplyTo
	w.Expiration, w.MessageID, w.Timestamp, w.Type = p.Expiration, p.MessageID, p.Timestamp, p.Type
	w.UserID, w.AppID, w.ClusterID = p.UserID, p.AppID, p.ClusterID
	set(amqp091.FlagContentType, p.ContentType != "")
	set(amqp091.FlagContentEncoding, p.ContentEncoding != "")
	set(amqp091.FlagHeaders, p.Headers != nil)
	set(amqp091.FlagDeliveryMode, p.DeliveryMode != 0)
	set(amqp091.FlagPriority, p.Priority != 0)
	set(amqp091.FlagCorrelationID, p.CorrelationID != "")
	set(amqp091.FlagReplyTo, p.ReplyTo != "")
	set(amqp091.FlagExpiration, p.Expiration != "")
	set(amqp091.FlagMessageID, p.MessageID != "")
	set(amqp091.FlagTimestamp, !p.Timestamp.IsZero())
	set(amqp091.FlagType, p.Type != "")
	set(amqp091.FlagUserID, p.UserID != "")
	set(amqp091.FlagAppID, p.AppID != "")
	set(amqp091.FlagClusterID, p.ClusterID != "")
	longCorr := len(p.CorrelationID) > 255
	if p.Ordered == nil && !longCorr {
		return amqp091.AppendProperties(buf, &w)
	}
	// Flags, content type and encoding, the headers table written here in
	// order, then the other properties (encoded with their own flags word,
	// which is cut out).
	w.Flags |= amqp091.FlagHeaders
	if longCorr {
		w.Flags &^= amqp091.FlagCorrelationID
	}
	const front = amqp091.FlagContentType | amqp091.FlagContentEncoding | amqp091.FlagHeaders
	e := amqp091.Encoder{Buf: buf}
	e.Short(w.Flags)
	if w.Flags&amqp091.FlagContentType != 0 {
		e.Shortstr(w.ContentType)
	}
	if w.Flags&amqp091.FlagContentEncoding != 0 {
		e.Shortstr(w.ContentEncoding)
	}
	buf = appendOrderedHeaders(e.Buf, p, longCorr)
	rest := w
	rest.Flags &^= front
	at := len(buf)
	buf = amqp091.AppendProperties(buf, &rest)
	copy(buf[at:], buf[at+2:])
	return buf[:len(buf)-2]
}

// appendOrderedHeaders appends the headers field table: p.Ordered's names
// in order (each once, with the map's value where the map has it), then
// the map's other names sorted, then x-correlation-id for a long
// correlation id.
func appendOrderedHeaders(buf []byte, p *broker.Properties, longCorr bool) []byte {
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
		buf = amqp091.AppendField(buf, h.Key, v)
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
			buf = amqp091.AppendField(buf, k, p.Headers[k])
		}
	}
	if longCorr && !seenBefore(p.Ordered, HeaderCorrelationID) && p.Headers[HeaderCorrelationID] == nil {
		buf = amqp091.AppendField(buf, HeaderCorrelationID, p.CorrelationID)
	}
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

func seenBefore(hs []broker.Header, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

// EachHeader calls fn for each header in encoded AMQP basic properties, in
// the order the publisher wrote them.
func EachHeader(wireProps []byte, fn func(key string, v any)) error {
	d := amqp091.NewDecoder(wireProps)
	flags := d.Short()
	if flags&amqp091.FlagContentType != 0 {
		d.Shortstr()
	}
	if flags&amqp091.FlagContentEncoding != 0 {
		d.Shortstr()
	}
	if flags&amqp091.FlagHeaders == 0 {
		return d.Err()
	}
	raw := d.LongstrBytes()
	if err := d.Err(); err != nil {
		return err
	}
	return amqp091.EachField(raw, fn)
}

// WireProperties returns m's encoded AMQP properties: the bytes it arrived
// with when they are kept, else a fresh encoding.
func WireProperties(buf []byte, m *broker.Message) []byte {
	if m.WireProps != nil {
		return append(buf, m.WireProps...)
	}
	return AppendProperties(buf, &m.Props)
}
