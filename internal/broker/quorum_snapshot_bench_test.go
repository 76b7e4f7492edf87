package broker

import (
	"bytes"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// BenchmarkQuorumSnapshot: the snapshot of a quorum queue holding 4,000
// ready 1 KiB messages, which a group takes on its own goroutine every
// 10,000 entries (docs/performance.md).
func BenchmarkQuorumSnapshot(b *testing.B) {
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	body := bytes.Repeat([]byte("x"), 1024)
	for i := range 4000 {
		c := qcmd{kind: qcEnqueue, node: 1, record: message.AppendMessage(nil, &message.Message{Body: body, Published: 1,
			Exchange: "", RoutingKey: "q", Props: message.Properties{Headers: map[string]any{"k": int64(i)}}})}
		m.Apply(uint64(i+1), c.encode(nil))
	}
	s, _ := m.Snapshot()
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Snapshot(); err != nil {
			b.Fatal(err)
		}
	}
}
