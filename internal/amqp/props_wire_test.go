package amqp

import (
	"reflect"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// The properties message encodes (for records and for deliveries of
// messages that did not arrive over AMQP) are AMQP basic properties the
// wire decoder reads whole, every field intact; ordered headers come out
// once each, in order.
func TestMessagePropertiesAreAMQPBasicProperties(t *testing.T) {
	t.Parallel()
	p := message.Properties{ContentType: "text/plain", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 3,
		CorrelationID: "c", ReplyTo: "r", Expiration: "100", MessageID: "m", Timestamp: time.Unix(1700000000, 0).UTC(),
		Type: "t", UserID: "u", AppID: "a", ClusterID: "cl",
		Ordered: []message.Header{{Key: "z", Value: "1"}, {Key: "y", Value: amqp091.Decimal{Scale: 1, Value: 5}}, {Key: "z", Value: "3"}},
		Headers: map[string]any{"z": "1", "y": amqp091.Decimal{Scale: 1, Value: 5}, "x-death": []any{amqp091.Table{"n": int64(1)}}}}
	for _, ordered := range []bool{true, false} {
		in := p
		if !ordered {
			in.Ordered = nil
		}
		raw := message.AppendProperties(nil, &in)
		var wp amqp091.Properties
		d := amqp091.NewDecoder(raw)
		wp.Decode(d)
		if d.Err() != nil || len(d.Remaining()) != 0 {
			t.Fatalf("decode: %v, %d left", d.Err(), len(d.Remaining()))
		}
		want := p
		want.Ordered = nil
		if got := fromWire(&wp); !reflect.DeepEqual(got, want) {
			t.Fatalf("got  %+v\nwant %+v", got, want)
		}
		if plain := amqp091.AppendProperties(nil, &wp); !ordered && string(plain) != string(raw) {
			t.Fatalf("message encodes %x, the wire codec %x", raw, plain)
		}
	}
}
