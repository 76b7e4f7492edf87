package message

import (
	"bytes"
	"testing"
)

func TestPeekRecord(t *testing.T) {
	t.Parallel()
	for _, m := range []*Message{
		{Exchange: "x", RoutingKey: "k", Published: 42, Body: []byte("body"),
			Props: Properties{ContentType: "t", ContentEncoding: "e", Headers: map[string]any{"a": int32(1)}, DeliveryMode: 2,
				Priority: 3, CorrelationID: "c", ReplyTo: "r", Expiration: "1500", MessageID: "m"}},
		{Published: 7, Body: nil},
		mqttMessage(),
	} {
		rec := AppendMessage(nil, m)
		info, err := PeekRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if info.Published != m.Published || info.BodyLen != len(m.Body) || string(info.Expiration) != m.Props.Expiration {
			t.Fatalf("peek %+v of %+v", info, m)
		}
		for n := range len(rec) - 1 { // a record cut short anywhere in its sections is refused
			if _, err := PeekRecord(rec[:n]); err == nil && n < len(rec)-len(m.Body)-extensionLen(m) {
				t.Fatalf("record cut at %d of %d accepted", n, len(rec))
			}
		}
	}
}

// extensionLen is how many bytes the record extension takes for m.
func extensionLen(m *Message) int { return len(appendExtension(nil, m)) }

// FuzzPeekRecord: whatever DecodeMessage accepts PeekRecord accepts, and
// they agree on what PeekRecord reads.
func FuzzPeekRecord(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), Props: Properties{Expiration: "10"}}))
	f.Add(AppendMessage(nil, &Message{Body: []byte("b"), Props: Properties{ReplyTo: "r", Headers: map[string]any{"a": "b"}, Expiration: "x"}}))
	f.Add(AppendMessage(nil, mqttMessage()))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, perr := PeekRecord(b)
		m, err := DecodeMessage(bytes.Clone(b))
		if err != nil {
			return
		}
		if perr != nil {
			t.Fatalf("DecodeMessage accepts what PeekRecord refuses: %v", perr)
		}
		if info.Published != m.Published || info.BodyLen != len(m.Body) || string(info.Expiration) != m.Props.Expiration {
			t.Fatalf("peek %+v, decoded published %d body %d expiration %q", info, m.Published, len(m.Body), m.Props.Expiration)
		}
	})
}
