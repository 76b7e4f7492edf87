package mqtt

import (
	"encoding/binary"
	"maps"
	"testing"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// FuzzSessionExpiryFile: mqtt-sessions.bin of arbitrary bytes never panics
// the loader; it is loaded or refused as corrupt. A loaded file saves and
// loads back to the same entries.
func FuzzSessionExpiryFile(f *testing.F) {
	m := vfs.NewMem()
	_ = m.MkdirAll("/d")
	e, err := newSessionExpiry(m, "/d/seed.bin", nil)
	if err != nil {
		f.Fatal(err)
	}
	e.entries["client-a"] = expiryEntry{interval: 60}
	e.entries["b"] = expiryEntry{interval: neverExpires, left: 1700000000123456789}
	e.entries[""] = expiryEntry{interval: 1, left: -1}
	if err := e.saveLocked(); err != nil {
		f.Fatal(err)
	}
	seed, err := vfs.ReadFile(m, "/d/seed.bin")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-1])
	f.Add([]byte{0xff, 0xff, 'x'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := vfs.NewMem()
		_ = m.MkdirAll("/d")
		if err := vfs.WriteFileAtomic(m, "/d/mqtt-sessions.bin", raw); err != nil {
			t.Fatal(err)
		}
		e, err := newSessionExpiry(m, "/d/mqtt-sessions.bin", nil)
		if err != nil {
			return
		}
		e.path = "/d/again.bin"
		if err := e.saveLocked(); err != nil {
			t.Fatal(err)
		}
		e2, err := newSessionExpiry(m, "/d/again.bin", nil)
		if err != nil {
			t.Fatalf("a saved file does not load: %v", err)
		}
		if !maps.Equal(e.entries, e2.entries) {
			t.Fatalf("entries do not round-trip: %v, %v", e.entries, e2.entries)
		}
	})
}

// FuzzParseLegacyRetained: a previous version's mqtt-retained.bin of
// arbitrary bytes never panics the migration's parser.
func FuzzParseLegacyRetained(f *testing.F) {
	var seed []byte
	for _, r := range []struct{ vh, topic, body string }{{"/", "a/b", "hello"}, {"v2", "", ""}} {
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(r.vh)))
		seed = append(seed, r.vh...)
		seed = binary.BigEndian.AppendUint16(seed, uint16(len(r.topic)))
		seed = append(seed, r.topic...)
		rec := message.AppendMessage(nil, &message.Message{RoutingKey: r.topic, Body: []byte(r.body)})
		seed = binary.BigEndian.AppendUint32(seed, uint32(len(rec)))
		seed = append(seed, rec...)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-2])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		recs, err := parseLegacyRetained(raw)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Msg == nil {
				t.Fatalf("record %q without a message", r.Key)
			}
		}
	})
}
