package mqtt

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzDecodePublishInto: decoding into a reused Publish gives what Decode
// gives, error or packet, whatever the Publish held before (here: the
// previous input's packet, properties and all).
func FuzzDecodePublishInto(f *testing.F) {
	with := &Publish{QoS: 1, Topic: "a/b", PacketID: 7, Payload: []byte("x")}
	with.Props.ContentType = "text/plain"
	with.Props.Set(PropContentType)
	with.Props.User = []UserProperty{{Key: "k", Value: "v"}}
	for _, p := range []*Publish{with, {Topic: "t", Payload: []byte("p")}, {QoS: 2, Retain: true, Topic: "t", PacketID: 1}} {
		for _, v := range []byte{V311, V5} {
			b := p.Append(nil, v)
			f.Add(b[0], b[2:], v) // one-byte remaining length: the body follows
		}
	}
	f.Add(byte(0x36), []byte{0, 1, 't', 0, 1}, byte(V311)) // QoS 3
	reused := new(Publish)
	f.Fuzz(func(t *testing.T, first byte, body []byte, v byte) {
		if v != V311 && v != V5 {
			v = V311
		}
		first = PUBLISH<<4 | first&0x0f
		want, wantErr := Decode(first, body, v)
		err := DecodePublishInto(reused, first, body, v)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("DecodePublishInto error %v, Decode error %v", err, wantErr)
		}
		if err != nil {
			if err.Error() != wantErr.Error() {
				t.Fatalf("DecodePublishInto error %q, Decode error %q", err, wantErr)
			}
			return
		}
		w := want.(*Publish)
		if !reflect.DeepEqual(reused, w) && !bytes.Equal(reused.Append(nil, v), w.Append(nil, v)) {
			t.Fatalf("DecodePublishInto gave %+v, Decode %+v", reused, w)
		}
	})
}
