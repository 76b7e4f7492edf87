package message

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mqttMessage() *Message {
	return &Message{
		Exchange: "amq.topic", RoutingKey: "a.b", Body: []byte("x"), Published: 42,
		Props: Properties{DeliveryMode: 2, CorrelationID: strings.Repeat("c", 300),
			Ordered: []Header{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}, {Key: "b", Value: "3"}, {Key: "n", Value: int32(7)}},
			Headers: map[string]any{"b": "1", "a": "2", "n": int32(7)}},
		Origin: Origin{ClientID: "dev-1", MQTT: true, QoS: 2, Retain: true, PayloadFormat: 1},
	}
}

// Origin, ordered headers with repeats and a long correlation id survive
// the record; the AMQP properties in it carry each header once, in order,
// and the correlation id in x-correlation-id.
func TestMessageExtensionRoundTrip(t *testing.T) {
	t.Parallel()
	m := mqttMessage()
	got, err := DecodeMessage(AppendMessage(nil, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != m.Origin || got.Props.CorrelationID != m.Props.CorrelationID ||
		!reflect.DeepEqual(got.Props.Ordered, m.Props.Ordered) || !reflect.DeepEqual(got.Props.Headers, m.Props.Headers) {
		t.Fatalf("decoded %+v %+v, want %+v %+v", got.Origin, got.Props, m.Origin, m.Props)
	}
	var keys []string
	var corr any
	if err := EachHeader(got.WireProps, func(k string, v any) {
		keys = append(keys, k)
		if k == HeaderCorrelationID {
			corr = v
		}
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"b", "a", "n", HeaderCorrelationID}) || corr != m.Props.CorrelationID {
		t.Fatalf("AMQP headers in order %v, correlation header %v", keys, corr)
	}
	wp, err := DecodeProperties(got.WireProps)
	if err != nil || binary.BigEndian.Uint16(got.WireProps)&flagCorrelationID != 0 || wp.CorrelationID != "" || wp.DeliveryMode != 2 {
		t.Fatalf("AMQP properties %+v %v", wp, err)
	}
}

// A record from a version before the extension still decodes, and the
// MQTT facts it kept in headers move into Origin.
func TestLegacyMQTTRecordUpgrades(t *testing.T) {
	t.Parallel()
	old := &Message{Exchange: "amq.topic", RoutingKey: "t", Body: []byte("x"), Published: 1,
		Props: Properties{DeliveryMode: 2, Headers: map[string]any{
			legacyQoS: int32(2), legacyClient: "dev-1", legacyRetain: true, legacyPayloadFormat: int32(1), "user": "kept"}}}
	rec := AppendMessage(nil, old) // no Origin, no Ordered: the old format exactly
	got, err := DecodeMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := Origin{ClientID: "dev-1", MQTT: true, QoS: 2, Retain: true, PayloadFormat: 1}
	if got.Origin != want || !reflect.DeepEqual(got.Props.Headers, map[string]any{"user": "kept"}) || got.WireProps != nil {
		t.Fatalf("upgraded %+v headers %v wire %v", got.Origin, got.Props.Headers, got.WireProps != nil)
	}
	plain := &Message{Exchange: "x", RoutingKey: "k", Body: []byte("b"), Props: Properties{Headers: map[string]any{"a": int32(1)}}}
	if got, err := DecodeMessage(AppendMessage(nil, plain)); err != nil || got.Origin != (Origin{}) || got.WireProps == nil {
		t.Fatalf("an AMQP record: %+v %v", got, err)
	}
}

func TestCorruptExtensionRefused(t *testing.T) {
	t.Parallel()
	rec := AppendMessage(nil, mqttMessage())
	for _, cut := range []int{1, 3, 10} {
		if _, err := DecodeMessage(rec[:len(rec)-cut]); err == nil {
			t.Fatalf("a record cut by %d decoded", cut)
		}
	}
	bad := append(AppendMessage(nil, &Message{Body: []byte("b")}), 9)
	if _, err := DecodeMessage(bad); err == nil {
		t.Fatal("an unknown extension version decoded")
	}
}

// The ordered encoding writes every other property as the plain one does.
func TestOrderedPropertiesKeepEveryField(t *testing.T) {
	t.Parallel()
	p := Properties{ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 3,
		CorrelationID: "c", ReplyTo: "r", Expiration: "100", MessageID: "m", Timestamp: time.Unix(1700000000, 0).UTC(),
		Type: "t", UserID: "u", AppID: "a", ClusterID: "cl",
		Ordered: []Header{{Key: "z", Value: "1"}, {Key: "y", Value: "2"}, {Key: "z", Value: "3"}},
		Headers: map[string]any{"z": "1", "y": "2", "x-death": "added"}}
	got, err := DecodeProperties(AppendProperties(nil, &p))
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.Ordered = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	var keys []string
	_ = EachHeader(AppendProperties(nil, &p), func(k string, _ any) { keys = append(keys, k) })
	if !reflect.DeepEqual(keys, []string{"z", "y", "x-death"}) {
		t.Fatalf("header order %v", keys)
	}
}
