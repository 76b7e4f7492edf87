package record

import (
	"encoding/binary"
	"fmt"
)

// Reader reads the fields of a byte string (a record's payload, a wire
// message's body). Every read is bounds-checked; the first failure sticks,
// and later reads return zero values, so a decoder reads every field and
// checks Err (or End) once. A length or count is never trusted: it is
// checked against the bytes left before anything is sliced or allocated.
type Reader struct {
	b         []byte
	err       error
	malformed error
}

// NewReader reads b. Failures wrap malformed, the caller's sentinel
// ("wal: bad record", "forward: malformed message"), with what failed.
func NewReader(b []byte, malformed error) Reader {
	return Reader{b: b, malformed: malformed}
}

// Fail records a failure (the first one sticks); decoders call it for
// values that read well but mean nothing.
func (r *Reader) Fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", r.malformed, what)
	}
}

// Err is the first failure, or nil.
func (r *Reader) Err() error { return r.err }

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the bytes left, unread (aliasing the input).
func (r *Reader) Rest() []byte { return r.b }

// End returns the first failure, or one if bytes are left unread.
func (r *Reader) End() error {
	if r.err == nil && len(r.b) != 0 {
		r.Fail("trailing bytes")
	}
	return r.err
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.Fail("short")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Bool reads a flag byte: 0 or 1, anything else fails.
func (r *Reader) Bool() bool {
	switch r.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail("bad flag")
	return false
}

// U64 reads a little-endian uint64.
func (r *Reader) U64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.Fail("short")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads a byte string prefixed by its uvarint length; the result
// aliases the input (its capacity ends with it).
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.Fail("length past the end")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Str reads a string prefixed by its uvarint length (not String, which
// fmt would take for a Stringer and call, consuming the field).
func (r *Reader) Str() string { return string(r.Bytes()) }

// Count reads a uvarint count of items each at least min (≥ 1) bytes long,
// failing for one the bytes left cannot hold, so a caller may allocate for
// it.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.b)/min) {
		r.Fail("count past the end")
		return 0
	}
	return int(n)
}

// AppendBytes appends v prefixed by its uvarint length, as Bytes reads it.
func AppendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// AppendString appends s prefixed by its uvarint length, as Str reads
// it.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBool appends a flag byte, as Bool reads it.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
