package record

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, and what it accepts is exactly a record
// Append would write, within the bound.
func FuzzParse(f *testing.F) {
	f.Add(Append(nil, 1, []byte("payload")), uint32(1<<20))
	f.Add(Append(Append(nil, 4, nil), 2, []byte{1, 2}), uint32(3))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0}, uint32(1))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 9}, uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, max uint32) {
		typ, payload, n, ok := Parse(b, max)
		if !ok {
			if typ != 0 || payload != nil || n != 0 {
				t.Fatal("a refused record returned values")
			}
			return
		}
		if n > len(b) || uint32(n-HeaderLen) > max {
			t.Fatalf("accepted %d bytes of %d (max %d)", n, len(b), max)
		}
		if again := Append(nil, typ, payload); !bytes.Equal(again, b[:n]) {
			t.Fatalf("accepted %x, which Append writes as %x", b[:n], again)
		}
	})
}

// FuzzReader: any sequence of reads over any bytes never panics, never
// reads past the input, and once failed stays failed with zero values.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, []byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add(AppendString(AppendBytes(nil, []byte("ab")), "q"), []byte{5, 6, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, []byte{3, 4, 7})
	f.Fuzz(func(t *testing.T, b, ops []byte) {
		r := NewReader(b, errBad)
		for _, op := range ops {
			before, failed := r.Len(), r.Err() != nil
			var zero bool
			switch op % 8 {
			case 0:
				zero = r.Byte() == 0
			case 1:
				zero = !r.Bool()
			case 2:
				zero = r.U64() == 0
			case 3:
				zero = r.Uvarint() == 0
			case 4:
				zero = r.Varint() == 0
			case 5:
				v := r.Bytes()
				zero = v == nil
				if len(v) > before {
					t.Fatalf("read %d bytes of %d", len(v), before)
				}
			case 6:
				zero = r.Str() == ""
			case 7:
				n := r.Count(int(op/8) + 1)
				zero = n == 0
				if n > r.Len() {
					t.Fatalf("count %d with %d bytes left", n, r.Len())
				}
			}
			if r.Len() > before {
				t.Fatal("the reader went backwards")
			}
			if failed && (!zero || r.Len() != before) {
				t.Fatal("a failed reader read on")
			}
		}
		_ = r.End()
	})
}
