package mqtt

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzSplit: Split agrees with Reader on any byte stream — the same
// packets, the same first byte and body, and a failure where Reader fails
// on the header — and never reads past what it was given.
func FuzzSplit(f *testing.F) {
	f.Add([]byte{0xC0, 0x00}, 0)
	f.Add([]byte{0x30, 0x05, 0x00, 0x01, 'a', 'x', 'y', 0xE0, 0x00}, 0)
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 0)
	f.Add([]byte{0x30, 0x80, 0x01}, 64)
	f.Add([]byte{0x10, 0x0C, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00}, 16)
	f.Fuzz(func(t *testing.T, b []byte, maxSize int) {
		if maxSize < 0 {
			maxSize = -maxSize
		}
		rd := NewReader(bufio.NewReader(bytes.NewReader(b)), maxSize)
		rest := b
		for len(rest) > 0 {
			first, body, size, need, err := Split(rest, maxSize)
			if err != nil {
				var we *Error
				if !errors.As(err, &we) {
					t.Fatalf("Split error %v is not a *Error", err)
				}
				return
			}
			if size == 0 {
				if need != 0 && need <= len(rest) {
					t.Fatalf("incomplete, yet need %d ≤ %d held", need, len(rest))
				}
				return
			}
			if size > len(rest) || need != size || len(body) > size {
				t.Fatalf("size %d need %d body %d of %d bytes", size, need, len(body), len(rest))
			}
			// Reader must see the same packet boundary: decode both ways.
			p1, err1 := Decode(first, body, V5)
			p2, err2 := rd.ReadPacket(V5)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("Split+Decode: %v, Reader: %v", err1, err2)
			}
			if err1 != nil {
				return
			}
			if p1.Type() != p2.Type() {
				t.Fatalf("packet type %d vs %d", p1.Type(), p2.Type())
			}
			rest = rest[size:]
		}
	})
}
