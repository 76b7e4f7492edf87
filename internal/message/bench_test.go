package message

import (
	"testing"
	"time"
)

func benchMessage() *Message {
	return &Message{Exchange: "amq.topic", RoutingKey: "sensor.1.temp", Published: time.Now().UnixNano(), Body: make([]byte, 256),
		Props: Properties{ContentType: "application/json", DeliveryMode: 2, MessageID: "m-1",
			Headers: map[string]any{"tenant": "acme", "n": int32(7), "x-death": []any{map[string]any{"count": int64(1), "queue": "q"}}}}}
}

// Encoding a record from properties (a message that did not arrive over
// AMQP, or was changed) and decoding one (recovery, paged-out reads).
func BenchmarkRecord(b *testing.B) {
	m := benchMessage()
	rec := AppendMessage(nil, m)
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = AppendMessage(buf[:0], m)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeMessage(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
