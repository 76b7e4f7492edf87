package message

import (
	"encoding/binary"
	"math"
	"sort"
	"time"
)

// Header values and stored arguments use the AMQP 0-9-1 field-table
// encoding (a type octet before each value). It lives here, not in
// wire/amqp091, because the stored record holds it and this package
// imports nothing of ours; wire/amqp091 uses these functions, so the two
// cannot drift apart and a value decoded by either has the same Go type.
//
// Values are one of: bool, int8, uint8, int16, uint16, int32, uint32,
// int64, float32, float64, Decimal, string, []byte, []any, time.Time,
// map[string]any or nil — the types RabbitMQ and its clients use. int and
// uint64 encode as int64; any other type encodes as void.

// Decimal is the AMQP decimal-value: Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// maxTableDepth bounds nesting so hostile input cannot exhaust the stack.
const maxTableDepth = 32

// DecodeTable decodes the content of a field table (raw is without its
// length prefix). The result's strings are copies; []byte values too.
func DecodeTable(raw []byte) (map[string]any, error) {
	return decodeTable(raw, 0)
}

func decodeTable(raw []byte, depth int) (map[string]any, error) {
	if depth > maxTableDepth {
		return nil, (&reader{}).failed("field table nested deeper than %d", maxTableDepth)
	}
	r := reader{buf: raw}
	t := map[string]any{}
	for r.off < len(r.buf) && r.err == nil {
		key := r.shortstr()
		v := r.fieldValue(depth)
		if r.err == nil {
			t[key] = v
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return t, nil
}

func (r *reader) failed(format string, args ...any) error {
	r.fail(format, args...)
	return r.err
}

func (r *reader) fieldValue(depth int) any {
	kind := r.octet()
	if r.err != nil {
		return nil
	}
	switch kind {
	case 't':
		return r.octet() != 0
	case 'b':
		return int8(r.octet())
	case 'B':
		return r.octet()
	case 's':
		return int16(r.short())
	case 'u':
		return r.short()
	case 'I':
		return int32(r.long())
	case 'i':
		return r.long()
	case 'l':
		return int64(r.longlong())
	case 'f':
		return math.Float32frombits(r.long())
	case 'd':
		return math.Float64frombits(r.longlong())
	case 'D':
		scale := r.octet()
		return Decimal{Scale: scale, Value: int32(r.long())}
	case 'S':
		return string(r.longstrBytes())
	case 'x':
		b := r.longstrBytes()
		return append([]byte(nil), b...)
	case 'A':
		raw := r.longstrBytes()
		if r.err != nil {
			return nil
		}
		if depth >= maxTableDepth {
			r.fail("field array nested deeper than %d", maxTableDepth)
			return nil
		}
		sub := reader{buf: raw}
		arr := []any{}
		for sub.off < len(sub.buf) && sub.err == nil {
			v := sub.fieldValue(depth + 1)
			if sub.err == nil {
				arr = append(arr, v)
			}
		}
		if sub.err != nil {
			r.err = sub.err
			return nil
		}
		return arr
	case 'T':
		return r.timestamp()
	case 'F':
		raw := r.longstrBytes()
		if r.err != nil {
			return nil
		}
		t, err := decodeTable(raw, depth+1)
		if err != nil {
			r.err = err
			return nil
		}
		return t
	case 'V':
		return nil
	default:
		r.fail("unknown field type %q", kind)
		return nil
	}
}

// AppendTable appends t as a field table, its length first. Keys are
// written in sorted order so the encoding is deterministic (tests and
// checksums rely on it); keys longer than 255 bytes are cut.
func AppendTable(buf []byte, t map[string]any) []byte {
	lenAt := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	if len(t) > 0 {
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			buf = AppendField(buf, k, t[k])
		}
	}
	binary.BigEndian.PutUint32(buf[lenAt:], uint32(len(buf)-lenAt-4))
	return buf
}

// EachField calls fn for every field of an encoded field table (raw is the
// table's content, without its length prefix) in wire order: a table read
// as an ordered list, for headers that must keep the publisher's order.
func EachField(raw []byte, fn func(key string, v any)) error {
	r := reader{buf: raw}
	for r.off < len(r.buf) && r.err == nil {
		key := r.shortstr()
		v := r.fieldValue(0)
		if r.err == nil {
			fn(key, v)
		}
	}
	return r.err
}

// AppendField appends one field-table entry, key (cut to 255 bytes) then
// value, of any type a table holds.
func AppendField(buf []byte, key string, v any) []byte {
	if len(key) > 255 {
		key = key[:255]
	}
	buf = append(buf, byte(len(key)))
	buf = append(buf, key...)
	return appendFieldValue(buf, v)
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
	case map[string]any:
		return AppendTable(append(buf, 'F'), v)
	default:
		return append(buf, 'V')
	}
}

// TableInt returns a field-table integer of any width as int64: header
// matching, queue arguments and records of earlier versions all accept any.
func TableInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	case uint64:
		return int64(v), true
	}
	return 0, false
}
