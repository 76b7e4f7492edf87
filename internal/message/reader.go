package message

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// errSyntax reports bytes that are not a well-formed field table or
// properties section; callers wrap it in their own error.
var errSyntax = errors.New("message: malformed encoding")

// reader reads the big-endian primitives of the AMQP encoding from a byte
// slice. The first error is sticky: later reads return zero values.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errSyntax}, args...)...)
	}
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.fail("need %d bytes at offset %d, have %d", n, r.off, len(r.buf)-r.off)
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) remaining() []byte {
	if r.off > len(r.buf) {
		return nil
	}
	return r.buf[r.off:]
}

func (r *reader) octet() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) short() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) long() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) longlong() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) shortstr() string {
	n := int(r.octet())
	return string(r.take(n))
}

// longstrBytes reads a 32-bit-length byte string without copying it.
func (r *reader) longstrBytes() []byte {
	n := r.long()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(r.buf)-r.off) {
		r.fail("long string of %d bytes exceeds the %d left", n, len(r.buf)-r.off)
		return nil
	}
	return r.take(int(n))
}

func (r *reader) timestamp() time.Time {
	v := r.longlong()
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(int64(v), 0).UTC()
}
