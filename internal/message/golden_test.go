package message

import (
	"bytes"
	"os"
	"testing"
)

// The records in testdata were written by the version before this package
// existed (internal/codec over wire/amqp091): an AMQP message with a header
// of every field type, an MQTT 5 message with the record extension, and an
// MQTT message from before the extension. They must keep decoding, and a
// fresh encoding of what they decode to must be the same bytes, so
// records written now read in the older version too.
func TestRecordsFromEarlierVersionsDecode(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"amqp", "mqtt-ext", "mqtt-legacy"} {
		raw, err := os.ReadFile("testdata/record-" + name + ".bin")
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeMessage(bytes.Clone(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "mqtt-legacy" {
			if !m.Origin.MQTT || m.Origin.QoS != 2 || m.Origin.ClientID != "dev-1" || len(m.Props.Headers) != 1 {
				t.Fatalf("%s: not upgraded: %+v %v", name, m.Origin, m.Props.Headers)
			}
			continue
		}
		if name == "amqp" && (len(m.Props.Headers) != 17 || m.Props.Headers["dec"] != (Decimal{Scale: 2, Value: 314})) {
			t.Fatalf("%s: headers %v", name, m.Props.Headers)
		}
		m.WireProps = nil
		if again := AppendMessage(nil, m); !bytes.Equal(again, raw) {
			t.Fatalf("%s: re-encoded\n%x\nwant\n%x", name, again, raw)
		}
	}
}
