package amqp091

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrSyntax reports a malformed method, header or field table.
var ErrSyntax = errors.New("amqp091: syntax error")

// Decoder reads AMQP primitive types from a byte slice. The first error is
// sticky: later reads return zero values and Err reports it.
type Decoder struct {
	buf  []byte
	off  int
	err  error
	bits byte // the octet holding packed bit fields
	nbit uint // bits already consumed from bits; 0 means fetch a new octet

	// strs caches recent short strings so a long-lived decoder returns the
	// same string for repeated names without allocating.
	strs [16]string
}

// NewDecoder returns a Decoder over buf.
func NewDecoder(buf []byte) *Decoder { return &Decoder{buf: buf} }

// Reset makes the decoder read buf from the start, keeping its string cache.
func (d *Decoder) Reset(buf []byte) { d.reset(buf) }

func (d *Decoder) reset(buf []byte) {
	d.buf, d.off, d.err, d.bits, d.nbit = buf, 0, nil, 0, 0
}

// Err returns the first decoding error.
func (d *Decoder) Err() error { return d.err }

// Remaining returns the undecoded bytes.
func (d *Decoder) Remaining() []byte {
	if d.off > len(d.buf) {
		return nil
	}
	return d.buf[d.off:]
}

func (d *Decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
	}
}

func (d *Decoder) take(n int) []byte {
	d.nbit = 0
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.buf)-d.off < n {
		d.fail("need %d bytes at offset %d, have %d", n, d.off, len(d.buf)-d.off)
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

// Octet reads an unsigned 8-bit integer.
func (d *Decoder) Octet() uint8 {
	b := d.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

// Short reads an unsigned 16-bit integer.
func (d *Decoder) Short() uint16 {
	b := d.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// Long reads an unsigned 32-bit integer.
func (d *Decoder) Long() uint32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Longlong reads an unsigned 64-bit integer.
func (d *Decoder) Longlong() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Bit reads the next packed bit; consecutive bits share octets, low bit first.
func (d *Decoder) Bit() bool {
	if d.nbit == 0 || d.nbit == 8 {
		b := d.take(1)
		if b == nil {
			return false
		}
		d.bits = b[0]
	}
	v := d.bits&(1<<d.nbit) != 0
	d.nbit++
	return v
}

// Shortstr reads a string of at most 255 bytes. Strings seen recently by
// this decoder are returned from its cache without allocating.
func (d *Decoder) Shortstr() string {
	n := int(d.Octet())
	b := d.take(n)
	if len(b) == 0 {
		return ""
	}
	slot := &d.strs[(len(b)*31+int(b[0])+int(b[len(b)-1]))&15]
	if *slot == string(b) { // compiles to a comparison, no allocation
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

// Longstr reads a string with a 32-bit length.
func (d *Decoder) Longstr() string {
	return string(d.LongstrBytes())
}

// LongstrBytes reads a 32-bit-length byte string without copying it.
func (d *Decoder) LongstrBytes() []byte {
	n := d.Long()
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(d.buf)-d.off) {
		d.fail("long string of %d bytes exceeds the %d left", n, len(d.buf)-d.off)
		return nil
	}
	return d.take(int(n))
}

// Timestamp reads a 64-bit POSIX time in seconds.
func (d *Decoder) Timestamp() time.Time {
	v := d.Longlong()
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}

// Table reads a field table.
func (d *Decoder) Table() Table {
	return d.table()
}

// Encoder appends AMQP primitive types to a byte slice it owns; reuse it by
// calling Reset to keep its capacity.
type Encoder struct {
	Buf    []byte
	bitPos int // index of the octet being filled with bits, -1 if none
	nbit   uint
}

// Reset empties the encoder, keeping its buffer.
func (e *Encoder) Reset() { e.Buf = e.Buf[:0]; e.nbit = 0 }

func (e *Encoder) endBits() { e.nbit = 0 }

// Octet appends an unsigned 8-bit integer.
func (e *Encoder) Octet(v uint8) { e.endBits(); e.Buf = append(e.Buf, v) }

// Short appends an unsigned 16-bit integer.
func (e *Encoder) Short(v uint16) { e.endBits(); e.Buf = binary.BigEndian.AppendUint16(e.Buf, v) }

// Long appends an unsigned 32-bit integer.
func (e *Encoder) Long(v uint32) { e.endBits(); e.Buf = binary.BigEndian.AppendUint32(e.Buf, v) }

// Longlong appends an unsigned 64-bit integer.
func (e *Encoder) Longlong(v uint64) { e.endBits(); e.Buf = binary.BigEndian.AppendUint64(e.Buf, v) }

// Bit appends a packed bit; consecutive bits share octets, low bit first.
func (e *Encoder) Bit(v bool) {
	if e.nbit == 0 || e.nbit == 8 {
		e.Buf = append(e.Buf, 0)
		e.bitPos = len(e.Buf) - 1
		e.nbit = 0
	}
	if v {
		e.Buf[e.bitPos] |= 1 << e.nbit
	}
	e.nbit++
}

// Shortstr appends a short string, truncated to 255 bytes.
func (e *Encoder) Shortstr(s string) {
	e.endBits()
	if len(s) > 255 {
		s = s[:255]
	}
	e.Buf = append(e.Buf, byte(len(s)))
	e.Buf = append(e.Buf, s...)
}

// Longstr appends a long string.
func (e *Encoder) Longstr(s string) {
	e.Long(uint32(len(s)))
	e.Buf = append(e.Buf, s...)
}

// Timestamp appends a 64-bit POSIX time in seconds.
func (e *Encoder) Timestamp(t time.Time) {
	if t.IsZero() {
		e.Longlong(0)
		return
	}
	e.Longlong(uint64(t.Unix()))
}

// Table appends a field table.
func (e *Encoder) Table(t Table) {
	e.endBits()
	e.Buf = AppendTable(e.Buf, t)
}
