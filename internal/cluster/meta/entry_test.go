package meta

import (
	"reflect"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, c := range []broker.Command{
		broker.AddVHost{Name: "v"},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-queue-type": "quorum"}}}},
		broker.DeleteQueue{VHost: "/", Name: "q", ID: "id1"},
	} {
		e, err := Decode(EncodeCommand(c))
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(e.Command, c) {
			t.Fatalf("%#v came back as %#v", c, e.Command)
		}
	}
	e, err := Decode(EncodeBarrier())
	if err != nil || e.Command != nil {
		t.Fatalf("barrier: %+v %v", e, err)
	}
	for _, bad := range [][]byte{nil, {0}, {9, 1}, {kindBarrier, 0}, {kindCommand, '{'}} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(EncodeBarrier())
	f.Add(EncodeCommand(broker.AddVHost{Name: "v"}))
	f.Add(EncodeCommand(broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "k"}}))
	f.Add([]byte{kindCommand})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil || e.Command == nil {
			return
		}
		// What decodes re-encodes to an entry that decodes the same.
		again, err := Decode(EncodeCommand(e.Command))
		if err != nil {
			t.Fatalf("re-encoding %#v: %v", e.Command, err)
		}
		if !reflect.DeepEqual(again.Command, e.Command) {
			t.Fatalf("%#v re-decoded as %#v", e.Command, again.Command)
		}
	})
}
