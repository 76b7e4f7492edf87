package raftnode

import (
	"bytes"
	"math"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, c := range []struct {
		node, seq uint64
		payload   []byte
	}{{1, 1, []byte("x")}, {0, 0, nil}, {math.MaxUint64, math.MaxUint64, bytes.Repeat([]byte{0xff}, 300)}, {7, 1 << 62, []byte{}}} {
		b := encodeHeader(c.node, c.seq, c.payload)
		node, seq, payload, err := decodeHeader(b)
		if err != nil || node != c.node || seq != c.seq || !bytes.Equal(payload, c.payload) {
			t.Fatalf("decode(encode(%d, %d, %q)) = %d, %d, %q, %v", c.node, c.seq, c.payload, node, seq, payload, err)
		}
	}
}

func TestHeaderRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {0x02, 1, 1}, {headerVersion}, {headerVersion, 0x80}, {headerVersion, 1}, {headerVersion, 1, 0x80}} {
		if _, _, _, err := decodeHeader(b); err == nil {
			t.Errorf("decodeHeader(%x) accepted", b)
		}
	}
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(encodeHeader(1, 2, []byte("payload")))
	f.Add(encodeHeader(math.MaxUint64, 0, nil))
	f.Add([]byte{headerVersion, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		node, seq, payload, err := decodeHeader(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same payload and fields; the
		// encoding is canonical unless the varints were padded.
		again := encodeHeader(node, seq, payload)
		n2, s2, p2, err := decodeHeader(again)
		if err != nil || n2 != node || s2 != seq || !bytes.Equal(p2, payload) {
			t.Fatalf("re-decode of %x: %d %d %x %v", again, n2, s2, p2, err)
		}
		if len(again) > len(b) {
			t.Fatalf("re-encoding %x grew to %x", b, again)
		}
	})
}

func FuzzUnwrapSnapshot(f *testing.F) {
	f.Add(wrapSnapshot([]byte("state")))
	f.Add([]byte{})
	f.Add([]byte{0x07})
	f.Fuzz(func(t *testing.T, b []byte) {
		sm, ok, err := unwrapSnapshot(b)
		if err != nil || !ok {
			return
		}
		if !bytes.Equal(wrapSnapshot(sm), b) {
			t.Fatalf("wrap(unwrap(%x)) = %x", b, wrapSnapshot(sm))
		}
	})
}
