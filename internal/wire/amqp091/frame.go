package amqp091

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolHeader is what a client sends first: "AMQP" 0 0 9 1.
var ProtocolHeader = [8]byte{'A', 'M', 'Q', 'P', 0, 0, 9, 1}

// FrameOverhead is the size of a frame's header (7) plus its end octet (1).
const FrameOverhead = 8

// Frame errors, each mapped by the connection to a 501 FRAME_ERROR close.
var (
	ErrFrameTooLarge = errors.New("amqp091: frame exceeds frame-max")
	ErrFrameEnd      = errors.New("amqp091: frame does not end with 0xCE")
)

// Frame is one decoded frame. Payload aliases the reader's buffer and is
// valid only until the next ReadFrame.
type Frame struct {
	Type    uint8
	Channel uint16
	Payload []byte
}

// BufferedReader is a reader that reports how much it holds already read;
// *bufio.Reader and *AdaptiveReader are two.
type BufferedReader interface {
	io.Reader
	Buffered() int
}

// FrameReader reads frames from a buffered stream, reusing one payload buffer.
type FrameReader struct {
	r        BufferedReader
	buf      []byte
	hdr      [7]byte // a field, not a local: a local would escape through io.ReadFull
	FrameMax uint32  // largest accepted frame including overhead; 0 means no limit
}

// NewFrameReader returns a reader over r accepting frames up to frameMax.
func NewFrameReader(r BufferedReader, frameMax uint32) *FrameReader {
	return &FrameReader{r: r, FrameMax: frameMax}
}

// Buffered reports how many bytes are already read from the socket and not
// yet decoded: when it is zero the next read may block, which is when a
// connection flushes its pending confirms.
func (fr *FrameReader) Buffered() int { return fr.r.Buffered() }

// ReadFrame reads the next frame.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	hdr := fr.hdr[:]
	if _, err := io.ReadFull(fr.r, hdr); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: hdr[0], Channel: binary.BigEndian.Uint16(hdr[1:3])}
	size := binary.BigEndian.Uint32(hdr[3:7])
	if fr.FrameMax != 0 && uint64(size)+FrameOverhead > uint64(fr.FrameMax) {
		return f, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, uint64(size)+FrameOverhead, fr.FrameMax)
	}
	if cap(fr.buf) < int(size)+1 {
		fr.buf = make([]byte, int(size)+1)
	}
	b := fr.buf[:int(size)+1]
	if _, err := io.ReadFull(fr.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return f, err
	}
	if b[size] != FrameEnd {
		return f, ErrFrameEnd
	}
	f.Payload = b[:size]
	return f, nil
}

// AppendMethodFrame appends m as a method frame on channel.
func AppendMethodFrame(buf []byte, channel uint16, m Method) []byte {
	start := len(buf)
	buf = append(buf, FrameMethod, byte(channel>>8), byte(channel), 0, 0, 0, 0)
	c, id := m.IDs()
	buf = binary.BigEndian.AppendUint16(buf, c)
	buf = binary.BigEndian.AppendUint16(buf, id)
	e := Encoder{Buf: buf}
	m.Encode(&e)
	buf = e.Buf
	binary.BigEndian.PutUint32(buf[start+3:], uint32(len(buf)-start-7))
	return append(buf, FrameEnd)
}

// AppendHeaderFrame appends a content header frame whose properties are
// already encoded (flags included) in props.
func AppendHeaderFrame(buf []byte, channel uint16, classID uint16, bodySize uint64, props []byte) []byte {
	size := 12 + len(props)
	buf = append(buf, FrameHeader, byte(channel>>8), byte(channel))
	buf = binary.BigEndian.AppendUint32(buf, uint32(size))
	buf = binary.BigEndian.AppendUint16(buf, classID)
	buf = append(buf, 0, 0) // weight, always 0
	buf = binary.BigEndian.AppendUint64(buf, bodySize)
	buf = append(buf, props...)
	return append(buf, FrameEnd)
}

// AppendBodyFrames appends body split into frames of at most frameMax bytes.
func AppendBodyFrames(buf []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := int(frameMax) - FrameOverhead
	if frameMax == 0 || chunk <= 0 {
		chunk = len(body)
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		buf = append(buf, FrameBody, byte(channel>>8), byte(channel))
		buf = binary.BigEndian.AppendUint32(buf, uint32(n))
		buf = append(buf, body[:n]...)
		buf = append(buf, FrameEnd)
		body = body[n:]
	}
	return buf
}

// AppendHeartbeat appends a heartbeat frame.
func AppendHeartbeat(buf []byte) []byte {
	return append(buf, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}

// ContentHeader is a decoded content header frame payload.
type ContentHeader struct {
	ClassID    uint16
	BodySize   uint64
	Properties Properties
	// RawProperties aliases the frame payload: the encoded flags and
	// properties, to be copied by whoever keeps them.
	RawProperties []byte
}

// DecodeContentHeader decodes a header frame payload.
func DecodeContentHeader(payload []byte, h *ContentHeader) error {
	var d Decoder
	return d.DecodeContentHeader(payload, h)
}

// DecodeContentHeader decodes a header frame payload with d, reusing its
// string cache.
func (d *Decoder) DecodeContentHeader(payload []byte, h *ContentHeader) error {
	d.reset(payload)
	h.ClassID = d.Short()
	_ = d.Short() // weight
	h.BodySize = d.Longlong()
	if d.err != nil {
		return d.err
	}
	h.RawProperties = payload[d.off:]
	h.Properties = Properties{}
	h.Properties.Decode(d)
	if d.err != nil {
		return d.err
	}
	if d.off != len(payload) {
		return fmt.Errorf("%w: %d trailing bytes after content header", ErrSyntax, len(payload)-d.off)
	}
	return nil
}

// AppendProperties appends the encoding of p (flags included).
func AppendProperties(buf []byte, p *Properties) []byte {
	e := Encoder{Buf: buf}
	p.Encode(&e)
	return e.Buf
}
