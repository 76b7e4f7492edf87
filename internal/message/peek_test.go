package message

import (
	"bytes"
	"testing"
	"time"
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

// review10 Q2: a record whose framing is sound but whose header table or
// extension DecodeMessage refuses is refused by PeekRecord too (a quorum
// queue refuses it at enqueue on every replica); PeekRecordFraming, for
// records already held, still reads it.
func TestPeekRecordRefusesWhatDecodeRefuses(t *testing.T) {
	t.Parallel()
	m := &Message{Published: 9, Body: []byte("b"), Props: Properties{Headers: map[string]any{"a": "b"}, Expiration: "5"}}
	rec := AppendMessage(nil, m)
	// The header table's one field: key "a", then its type octet 'S'.
	at := bytes.Index(rec, []byte{1, 'a', 'S'})
	if at < 0 {
		t.Fatal("header field not found in the record")
	}
	badTable := bytes.Clone(rec)
	badTable[at+2] = '?'                                 // an unknown field type
	badExt := append(bytes.Clone(rec), 9, 9, 9, 9, 9, 9) // an unknown extension version
	for name, b := range map[string][]byte{"header table": badTable, "extension": badExt} {
		if _, err := DecodeMessage(bytes.Clone(b)); err == nil {
			t.Fatalf("%s: the decoder accepts the damaged record", name)
		}
		if _, err := PeekRecord(b); err == nil {
			t.Fatalf("%s: PeekRecord accepts a record DecodeMessage refuses", name)
		}
		info, err := PeekRecordFraming(b)
		if err != nil || info.Published != 9 || info.BodyLen != 1 || string(info.Expiration) != "5" {
			t.Fatalf("%s: PeekRecordFraming: %+v, %v", name, info, err)
		}
	}
}

// FuzzPeekRecord: PeekRecord accepts exactly what DecodeMessage accepts,
// and they agree on what PeekRecord reads; PeekRecordFraming accepts at
// least as much, reading the same.
func FuzzPeekRecord(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), Props: Properties{Expiration: "10"}}))
	f.Add(AppendMessage(nil, &Message{Body: []byte("b"), Props: Properties{ReplyTo: "r", Headers: map[string]any{"a": "b"}, Expiration: "x"}}))
	f.Add(AppendMessage(nil, mqttMessage()))
	f.Add(AppendMessage(nil, &Message{Body: []byte("b"), Props: Properties{MessageID: "m", Timestamp: time.Unix(5, 0), Type: "t",
		UserID: "u", AppID: "a", ClusterID: "c", Headers: map[string]any{"n": map[string]any{"x": []any{int32(1), "s"}}, "d": Decimal{1, 2}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, perr := PeekRecord(b)
		finfo, ferr := PeekRecordFraming(b)
		m, err := DecodeMessage(bytes.Clone(b))
		if (err == nil) != (perr == nil) {
			t.Fatalf("DecodeMessage error %v, PeekRecord error %v", err, perr)
		}
		if perr == nil && (ferr != nil || finfo.Published != info.Published || finfo.BodyLen != info.BodyLen ||
			!bytes.Equal(finfo.Expiration, info.Expiration)) {
			t.Fatalf("PeekRecord %+v, PeekRecordFraming %+v, %v", info, finfo, ferr)
		}
		if err != nil {
			return
		}
		if info.Published != m.Published || info.BodyLen != len(m.Body) || string(info.Expiration) != m.Props.Expiration {
			t.Fatalf("peek %+v, decoded published %d body %d expiration %q", info, m.Published, len(m.Body), m.Props.Expiration)
		}
	})
}
