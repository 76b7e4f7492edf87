package amqp091

import "github.com/tern-broker/tern/internal/message"

// Table is an AMQP field table. Values are one of: bool, int8, uint8, int16,
// uint16, int32, uint32, int64, float32, float64, Decimal, string, []byte,
// []any, time.Time, Table or nil — the types RabbitMQ and its clients use.
//
// The field-table codec is internal/message's: stored records hold field
// values too, and one codec keeps the two encodings and the decoded Go
// types identical.
type Table = map[string]any

// Decimal is the AMQP decimal-value: Value × 10^-Scale.
type Decimal = message.Decimal

func (d *Decoder) table() Table {
	raw := d.LongstrBytes()
	if d.err != nil {
		return nil
	}
	t, err := message.DecodeTable(raw)
	if err != nil {
		d.fail("%v", err)
		return nil
	}
	return t
}

// AppendTable appends t as a field table. Keys are written in sorted order so
// the encoding is deterministic (tests and checksums rely on it).
func AppendTable(buf []byte, t Table) []byte { return message.AppendTable(buf, t) }
