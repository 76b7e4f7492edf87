package amqp091

import (
	"encoding/binary"
	"math"
	"sort"
	"time"
)

// Table is an AMQP field table. Values are one of: bool, int8, uint8, int16,
// uint16, int32, uint32, int64, float32, float64, Decimal, string, []byte,
// []any, time.Time, Table or nil — the types RabbitMQ and its clients use.
type Table = map[string]any

// Decimal is the AMQP decimal-value: Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// maxTableDepth bounds nesting so hostile input cannot exhaust the stack.
const maxTableDepth = 32

func (d *Decoder) table(depth int) Table {
	raw := d.LongstrBytes()
	if d.err != nil {
		return nil
	}
	if depth > maxTableDepth {
		d.fail("field table nested deeper than %d", maxTableDepth)
		return nil
	}
	sub := Decoder{buf: raw}
	t := Table{}
	for sub.off < len(sub.buf) && sub.err == nil {
		key := sub.Shortstr()
		v := sub.fieldValue(depth)
		if sub.err == nil {
			t[key] = v
		}
	}
	if sub.err != nil {
		d.err = sub.err
		return nil
	}
	return t
}

func (d *Decoder) fieldValue(depth int) any {
	kind := d.Octet()
	if d.err != nil {
		return nil
	}
	switch kind {
	case 't':
		return d.Octet() != 0
	case 'b':
		return int8(d.Octet())
	case 'B':
		return d.Octet()
	case 's':
		return int16(d.Short())
	case 'u':
		return d.Short()
	case 'I':
		return int32(d.Long())
	case 'i':
		return d.Long()
	case 'l':
		return int64(d.Longlong())
	case 'f':
		return math.Float32frombits(d.Long())
	case 'd':
		return math.Float64frombits(d.Longlong())
	case 'D':
		scale := d.Octet()
		return Decimal{Scale: scale, Value: int32(d.Long())}
	case 'S':
		return d.Longstr()
	case 'x':
		b := d.LongstrBytes()
		return append([]byte(nil), b...)
	case 'A':
		raw := d.LongstrBytes()
		if d.err != nil {
			return nil
		}
		if depth >= maxTableDepth {
			d.fail("field array nested deeper than %d", maxTableDepth)
			return nil
		}
		sub := Decoder{buf: raw}
		arr := []any{}
		for sub.off < len(sub.buf) && sub.err == nil {
			v := sub.fieldValue(depth + 1)
			if sub.err == nil {
				arr = append(arr, v)
			}
		}
		if sub.err != nil {
			d.err = sub.err
			return nil
		}
		return arr
	case 'T':
		return d.Timestamp()
	case 'F':
		return d.table(depth + 1)
	case 'V':
		return nil
	default:
		d.fail("unknown field type %q", kind)
		return nil
	}
}

// AppendTable appends t as a field table. Keys are written in sorted order so
// the encoding is deterministic (tests and checksums rely on it).
func AppendTable(buf []byte, t Table) []byte {
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	if len(t) > 0 {
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if len(k) > 255 {
				k = k[:255]
			}
			buf = append(buf, byte(len(k)))
			buf = append(buf, k...)
			buf = appendFieldValue(buf, t[k])
		}
	}
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

func appendFieldValue(buf []byte, v any) []byte {
	switch v := v.(type) {
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(buf, 't', b)
	case int8:
		return append(buf, 'b', byte(v))
	case uint8:
		return append(buf, 'B', v)
	case int16:
		return binary.BigEndian.AppendUint16(append(buf, 's'), uint16(v))
	case uint16:
		return binary.BigEndian.AppendUint16(append(buf, 'u'), v)
	case int32:
		return binary.BigEndian.AppendUint32(append(buf, 'I'), uint32(v))
	case uint32:
		return binary.BigEndian.AppendUint32(append(buf, 'i'), v)
	case int:
		return binary.BigEndian.AppendUint64(append(buf, 'l'), uint64(v))
	case int64:
		return binary.BigEndian.AppendUint64(append(buf, 'l'), uint64(v))
	case uint64:
		return binary.BigEndian.AppendUint64(append(buf, 'l'), v)
	case float32:
		return binary.BigEndian.AppendUint32(append(buf, 'f'), math.Float32bits(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(buf, 'd'), math.Float64bits(v))
	case Decimal:
		return binary.BigEndian.AppendUint32(append(buf, 'D', v.Scale), uint32(v.Value))
	case string:
		buf = binary.BigEndian.AppendUint32(append(buf, 'S'), uint32(len(v)))
		return append(buf, v...)
	case []byte:
		buf = binary.BigEndian.AppendUint32(append(buf, 'x'), uint32(len(v)))
		return append(buf, v...)
	case []any:
		buf = append(buf, 'A')
		lenAt := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		for _, e := range v {
			buf = appendFieldValue(buf, e)
		}
		binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
		return buf
	case time.Time:
		return binary.BigEndian.AppendUint64(append(buf, 'T'), uint64(v.Unix()))
	case Table:
		return AppendTable(append(buf, 'F'), v)
	default:
		return append(buf, 'V')
	}
}
