package amqp091

// Field tables as ordered lists. A Table (a map) loses the order of its
// fields; these keep it, for headers that must travel in the order the
// publisher gave them (MQTT 5 user properties, docs/design/mqtt.md).

// EachField calls fn for every field of an encoded field table (raw is the
// table's content, without its length prefix) in wire order.
func EachField(raw []byte, fn func(key string, v any)) error {
	d := Decoder{buf: raw}
	for d.off < len(d.buf) && d.err == nil {
		key := d.Shortstr()
		v := d.fieldValue(0)
		if d.err == nil {
			fn(key, v)
		}
	}
	return d.err
}

// AppendField appends one field-table entry, key (at most 255 bytes) then
// value, of any type a Table holds.
func AppendField(buf []byte, key string, v any) []byte {
	if len(key) > 255 {
		key = key[:255]
	}
	buf = append(buf, byte(len(key)))
	buf = append(buf, key...)
	return appendFieldValue(buf, v)
}
