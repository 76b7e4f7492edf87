package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestFrameRoundTripAndDamage(t *testing.T) {
	buf := Append(nil, 7, []byte("hello, "), []byte("world"))
	buf = Append(buf, 9)
	typ, payload, n, ok := Parse(buf, 1<<20)
	if !ok || typ != 7 || string(payload) != "hello, world" || n != HeaderLen+1+12 {
		t.Fatalf("first record: %d %q %d %v", typ, payload, n, ok)
	}
	typ, payload, m, ok := Parse(buf[n:], 1<<20)
	if !ok || typ != 9 || len(payload) != 0 || n+m != len(buf) {
		t.Fatalf("second record: %d %q %d %v", typ, payload, m, ok)
	}
	for name, b := range map[string][]byte{
		"short header":  buf[:HeaderLen],
		"cut payload":   buf[:n-1],
		"zero length":   make([]byte, 32),
		"over the max":  buf[:n],
		"flipped bit":   flip(buf[:n], HeaderLen+3),
		"flipped crc":   flip(buf[:n], 5),
		"flipped type":  flip(buf[:n], HeaderLen),
		"longer length": lengthen(buf[:n]),
	} {
		max := uint32(1 << 20)
		if name == "over the max" {
			max = 12
		}
		if _, _, _, ok := Parse(b, max); ok {
			t.Errorf("%s: parsed", name)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x10
	return c
}

func lengthen(b []byte) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint32(c, binary.LittleEndian.Uint32(c)+1)
	return append(c, 0)
}

var errBad = errors.New("test: bad")

func TestReaderReadsWhatWasAppended(t *testing.T) {
	var b []byte
	b = append(b, 0xab)
	b = AppendBool(b, true)
	b = binary.LittleEndian.AppendUint64(b, 1<<63|5)
	b = binary.AppendUvarint(b, 300)
	b = binary.AppendVarint(b, -7)
	b = AppendBytes(b, []byte{1, 2, 3})
	b = AppendString(b, "queue")
	b = binary.AppendUvarint(b, 2) // a count of two 1-byte items
	b = append(b, 'x', 'y')
	r := NewReader(b, errBad)
	if v := r.Byte(); v != 0xab {
		t.Fatalf("byte %x", v)
	}
	if !r.Bool() {
		t.Fatal("bool")
	}
	if v := r.U64(); v != 1<<63|5 {
		t.Fatalf("u64 %d", v)
	}
	if v := r.Uvarint(); v != 300 {
		t.Fatalf("uvarint %d", v)
	}
	if v := r.Varint(); v != -7 {
		t.Fatalf("varint %d", v)
	}
	if v := r.Bytes(); !bytes.Equal(v, []byte{1, 2, 3}) || cap(v) != 3 {
		t.Fatalf("bytes %v cap %d", v, cap(v))
	}
	if v := r.Str(); v != "queue" {
		t.Fatalf("string %q", v)
	}
	if n := r.Count(1); n != 2 || r.Len() != 2 || string(r.Rest()) != "xy" {
		t.Fatalf("count %d, %q left", n, r.Rest())
	}
	if err := r.End(); err == nil {
		t.Fatal("End with two bytes left succeeded")
	}
	r = NewReader([]byte{2}, errBad)
	_ = r.Byte()
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderFailuresStickAndNameTheCaller(t *testing.T) {
	cases := map[string]func(r *Reader){
		"short byte":         func(r *Reader) { r.Byte() },
		"bad flag":           func(r *Reader) { r.Bool() },
		"short u64":          func(r *Reader) { r.U64() },
		"bad uvarint":        func(r *Reader) { r.Uvarint() },
		"length past end":    func(r *Reader) { r.Bytes() },
		"count past the end": func(r *Reader) { r.Count(4) },
	}
	inputs := map[string][]byte{
		"short byte":         {},
		"bad flag":           {2},
		"short u64":          {1, 2, 3},
		"bad uvarint":        {0x80, 0x80},
		"length past end":    {5, 1, 2},
		"count past the end": {2, 0, 0, 0, 0},
	}
	for name, read := range cases {
		r := NewReader(inputs[name], errBad)
		read(&r)
		if !errors.Is(r.Err(), errBad) {
			t.Errorf("%s: err %v", name, r.Err())
			continue
		}
		first := r.Err()
		r.Fail("later")
		if r.Err() != first || r.Byte() != 0 || r.U64() != 0 || r.Bytes() != nil || r.End() != first {
			t.Errorf("%s: the first failure did not stick", name)
		}
	}
}
