package message

import (
	"reflect"
	"testing"
	"time"
)

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	m := &Message{
		Exchange: "amq.topic", RoutingKey: "a.b", Published: time.Now().UnixNano(), Body: []byte("payload"),
		Props: Properties{ContentType: "text/plain", DeliveryMode: 2, Priority: 4, Expiration: "5000",
			Headers: map[string]any{"k": "v", "n": int32(3)}, Timestamp: time.Unix(1700000000, 0).UTC(), MessageID: "id"},
	}
	got, err := DecodeMessage(AppendMessage(nil, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Exchange != m.Exchange || got.RoutingKey != m.RoutingKey || got.Published != m.Published || string(got.Body) != "payload" {
		t.Fatalf("%+v", got)
	}
	if !reflect.DeepEqual(got.Props, m.Props) {
		t.Fatalf("props %+v, want %+v", got.Props, m.Props)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, &Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), Props: Properties{Headers: map[string]any{"a": int32(1)}}}))
	f.Add(AppendMessage(nil, mqttMessage()))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if _, err := DecodeMessage(AppendMessage(nil, m)); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}
