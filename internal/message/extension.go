package message

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// The record extension keeps what AMQP basic properties cannot hold: the
// message's Origin, its headers in order with repeated names, and whether
// a long correlation id was moved into the x-correlation-id header.
//
//	version uint8 (1) | flags uint8 | qos uint8 | payload format uint8 |
//	client id length uint16 | client id |
//	[flagOrdered: count uint32, then per header: key length uint16 | key |
//	 'S' value length uint32 | value  (a string)
//	 or 'F' length uint32 | one AMQP field-table entry with an empty key]
//
// A record ending at its body has no extension: the format of earlier
// versions, which decodes as before (see upgradeLegacyMQTT).
const extVersion = 1

const (
	flagMQTT     = 1 << 0 // Origin.MQTT
	flagRetain   = 1 << 1 // Origin.Retain
	flagLongCorr = 1 << 2 // CorrelationID is in the x-correlation-id header
	flagOrdered  = 1 << 3 // Props.Ordered follows
)

func appendExtension(buf []byte, m *Message) []byte {
	o := &m.Origin
	longCorr := len(m.Props.CorrelationID) > 255
	if *o == (Origin{}) && m.Props.Ordered == nil && !longCorr {
		return buf
	}
	var flags byte
	if o.MQTT {
		flags |= flagMQTT
	}
	if o.Retain {
		flags |= flagRetain
	}
	if longCorr {
		flags |= flagLongCorr
	}
	if m.Props.Ordered != nil {
		flags |= flagOrdered
	}
	id := o.ClientID
	if len(id) > 0xFFFF {
		id = id[:0xFFFF]
	}
	buf = append(buf, extVersion, flags, o.QoS, o.PayloadFormat)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(id)))
	buf = append(buf, id...)
	if flags&flagOrdered == 0 {
		return buf
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(m.Props.Ordered)))
	for _, h := range m.Props.Ordered {
		k := h.Key
		if len(k) > 0xFFFF {
			k = k[:0xFFFF]
		}
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(k)))
		buf = append(buf, k...)
		if s, ok := h.Value.(string); ok {
			buf = append(buf, 'S')
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
			buf = append(buf, s...)
			continue
		}
		buf = append(buf, 'F')
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		buf = AppendField(buf, "", h.Value)
		binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	}
	return buf
}

func decodeExtension(b []byte, m *Message) error {
	corrupt := func(what string) error { return fmt.Errorf("%w: extension: %s", ErrCorrupt, what) }
	if len(b) < 6 || b[0] != extVersion {
		return corrupt("unknown version or short")
	}
	flags := b[1]
	m.Origin = Origin{MQTT: flags&flagMQTT != 0, Retain: flags&flagRetain != 0, QoS: b[2], PayloadFormat: b[3]}
	n := int(binary.BigEndian.Uint16(b[4:]))
	b = b[6:]
	if len(b) < n {
		return corrupt("client id")
	}
	m.Origin.ClientID = string(b[:n])
	b = b[n:]
	if flags&flagLongCorr != 0 {
		if v, ok := m.Props.Headers[HeaderCorrelationID].(string); ok {
			m.Props.CorrelationID = v
			delete(m.Props.Headers, HeaderCorrelationID) // the encoder's, not the publisher's
		}
	}
	if flags&flagOrdered != 0 {
		if len(b) < 4 {
			return corrupt("header count")
		}
		count := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(count) > uint64(len(b)) {
			return corrupt("header count")
		}
		hs := make([]Header, 0, count)
		for range count {
			if len(b) < 2 {
				return corrupt("header key")
			}
			kn := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+kn+5 {
				return corrupt("header")
			}
			key := string(b[2 : 2+kn])
			kind := b[2+kn]
			vn := binary.BigEndian.Uint32(b[3+kn:])
			b = b[7+kn:]
			if uint64(vn) > uint64(len(b)) {
				return corrupt("header value")
			}
			raw := b[:vn]
			b = b[vn:]
			var v any
			switch kind {
			case 'S':
				v = string(raw)
			case 'F':
				if err := EachField(raw, func(_ string, fv any) { v = fv }); err != nil {
					return corrupt(err.Error())
				}
			default:
				return corrupt("header value kind")
			}
			hs = append(hs, Header{Key: key, Value: v})
		}
		m.Props.Ordered = hs
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return nil
}

// Headers in which versions before the record extension kept MQTT facts.
const (
	legacyQoS           = "x-mqtt-publish-qos"
	legacyRetain        = "x-mqtt-retain"
	legacyClient        = "x-mqtt-client-id"
	legacyPayloadFormat = "x-mqtt-payload-format"
)

// upgradeLegacyMQTT moves the MQTT facts an earlier version stored in
// headers into the message's Origin, where the MQTT adapter now reads
// them, so durable MQTT messages and retained messages from before keep
// their QoS, retain flag and no-local publisher. The headers are
// re-encoded without them.
func upgradeLegacyMQTT(m *Message) {
	h := m.Props.Headers
	qos, ok := TableInt(h[legacyQoS])
	if !ok || qos < 0 || qos > 2 {
		return
	}
	m.Origin.MQTT, m.Origin.QoS = true, uint8(qos)
	m.Origin.Retain, _ = h[legacyRetain].(bool)
	if id, ok := h[legacyClient].(string); ok && utf8.ValidString(id) {
		m.Origin.ClientID = id
	}
	if f, ok := TableInt(h[legacyPayloadFormat]); ok {
		m.Origin.PayloadFormat = uint8(f)
	}
	for _, k := range []string{legacyQoS, legacyRetain, legacyClient, legacyPayloadFormat} {
		delete(h, k)
	}
	if len(h) == 0 {
		m.Props.Headers = nil
	}
	m.WireProps = nil
}
