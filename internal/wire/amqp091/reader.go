package amqp091

import "io"

// AdaptiveReader is a buffered reader whose buffer starts small and doubles
// (up to a maximum) whenever a read fills it. An idle connection then costs
// a few KiB, while a busy one soon reads many frames per syscall.
type AdaptiveReader struct {
	rd   io.Reader
	buf  []byte
	r, w int
	max  int
	grow bool
	err  error
}

// NewAdaptiveReader returns a reader starting with an initial-byte buffer
// that may grow to max bytes.
func NewAdaptiveReader(rd io.Reader, initial, max int) *AdaptiveReader {
	return &AdaptiveReader{rd: rd, buf: make([]byte, initial), max: max}
}

// Buffered returns how many bytes can be read without touching the
// underlying reader.
func (b *AdaptiveReader) Buffered() int { return b.w - b.r }

// Read implements io.Reader.
func (b *AdaptiveReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			err := b.err
			b.err = nil
			return 0, err
		}
		if len(p) >= len(b.buf) {
			// A large read goes straight to the caller's buffer.
			return b.rd.Read(p)
		}
		b.fill()
		if b.r == b.w {
			err := b.err
			b.err = nil
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

func (b *AdaptiveReader) fill() {
	if b.grow {
		b.buf = make([]byte, min(2*len(b.buf), b.max))
		b.grow = false
	}
	b.r, b.w = 0, 0
	n, err := b.rd.Read(b.buf)
	b.w, b.err = n, err
	if n == len(b.buf) && len(b.buf) < b.max {
		b.grow = true // it was full: next time read more at once
	}
}
