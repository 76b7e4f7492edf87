package mqtt

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
)

// dec reads MQTT primitives from a packet body; the first error sticks.
type dec struct {
	b   []byte
	off int
	err *Error
}

func (d *dec) fail(e *Error) {
	if d.err == nil {
		d.err = e
	}
}

func (d *dec) remaining() int { return len(d.b) - d.off }

func (d *dec) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || d.remaining() < n {
		d.fail(malformed("need %d bytes, have %d", n, d.remaining()))
		return nil
	}
	v := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return v
}

func (d *dec) byte1() byte {
	v := d.take(1)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *dec) u16() uint16 {
	v := d.take(2)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (d *dec) u32() uint32 {
	v := d.take(4)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (d *dec) varint() uint32 {
	var v uint32
	for i := 0; i < 4; i++ {
		c := d.byte1()
		if d.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v
		}
	}
	d.fail(malformed("variable byte integer longer than 4 bytes"))
	return 0
}

func (d *dec) binary() []byte {
	n := int(d.u16())
	return d.take(n)
}

// str reads a UTF-8 string: well formed, no U+0000 [MQTT-1.5.4-1, -2].
func (d *dec) str() string {
	b := d.binary()
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(b) || strings.IndexByte(string(b), 0) >= 0 {
		d.fail(malformed("invalid UTF-8 string"))
		return ""
	}
	return string(b)
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendVarint(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func appendBinary(b, v []byte) []byte {
	b = appendU16(b, uint16(len(v)))
	return append(b, v...)
}

func appendStr(b []byte, s string) []byte {
	b = appendU16(b, uint16(len(s)))
	return append(b, s...)
}

func varintLen(v uint32) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
