package amqp091

import (
	"fmt"

	"github.com/tern-broker/tern/internal/message"
)

// Field tables as ordered lists. A Table (a map) loses the order of its
// fields; these keep it, for headers that must travel in the order the
// publisher gave them (MQTT 5 user properties, docs/design/mqtt.md).

// EachField calls fn for every field of an encoded field table (raw is the
// table's content, without its length prefix) in wire order.
func EachField(raw []byte, fn func(key string, v any)) error {
	if err := message.EachField(raw, fn); err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return nil
}

// AppendField appends one field-table entry, key (at most 255 bytes) then
// value, of any type a Table holds.
func AppendField(buf []byte, key string, v any) []byte { return message.AppendField(buf, key, v) }
