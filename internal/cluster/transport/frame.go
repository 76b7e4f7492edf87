package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// After the handshake a connection carries frames in both directions. A
// frame is a fixed 14-byte header and a body:
//
//	type  uint8   frameRaft, frameRequest, frameReply, frameError, frameNotify, framePing
//	kind  uint8   the request or notify kind; for frameRaft, raftSnapshot when
//	              the batch carries a snapshot (MsgSnap), else 0
//	id    uint64  the Raft group (frameRaft) or the request id (request, reply, error)
//	len   uint32  body length, at most the receiver's MaxFrame (MaxSnapshotFrame
//	              for a frameRaft of kind raftSnapshot)
//
// all big-endian. Bodies:
//
//	frameRaft     uvarint count, then count × (uvarint length, proto.Marshal(raftpb.Message))
//	frameRequest  uvarint timeout in milliseconds (0: none), then the request body
//	frameReply    the reply body
//	frameError    the text of the remote handler's error
//	frameNotify   the notify body
//	framePing     empty: keeps an idle connection's read deadline from expiring
const (
	frameRaft    = 1
	frameRequest = 2
	frameReply   = 3
	frameError   = 4
	frameNotify  = 5
	framePing    = 6

	headerLen = 14

	// DefaultMaxFrame bounds a frame's body: a larger length is a protocol
	// error that closes the connection. A Raft batch carrying a snapshot
	// has its own bound, MaxSnapshotFrame.
	DefaultMaxFrame = 64 << 20

	// DefaultMaxSnapshotFrame bounds the body of a Raft batch carrying a
	// snapshot: the header's uint32 length. A snapshot is a quorum queue's
	// whole state; under MaxFrame, a follower that fell behind the
	// leader's log could never catch up once the queue held more than
	// 64 MiB (review7 F6). The reader grows its buffer as the bytes
	// arrive (readAhead), so the larger bound costs nothing until a
	// snapshot does come, and only an authenticated peer can send one.
	DefaultMaxSnapshotFrame = min(math.MaxUint32, math.MaxInt)

	// raftSnapshot is the kind of a frameRaft whose batch holds a MsgSnap.
	// A receiver that predates it reads the frame as any Raft batch.
	raftSnapshot = 1
)

// errProtocol marks a peer that broke the frame protocol; the connection
// is closed (only that one).
var errProtocol = errors.New("transport: protocol error")

// header is a decoded frame header.
type header struct {
	typ  uint8
	kind uint8
	id   uint64
	len  uint32
}

// appendHeader appends h to b.
func appendHeader(b []byte, h header) []byte {
	b = append(b, h.typ, h.kind)
	b = binary.BigEndian.AppendUint64(b, h.id)
	return binary.BigEndian.AppendUint32(b, h.len)
}

// parseHeader decodes and checks a header against maxFrame, or maxSnap
// for a Raft batch carrying a snapshot.
func parseHeader(b []byte, maxFrame, maxSnap int) (header, error) {
	h := header{typ: b[0], kind: b[1], id: binary.BigEndian.Uint64(b[2:10]), len: binary.BigEndian.Uint32(b[10:14])}
	if h.typ < frameRaft || h.typ > framePing {
		return h, fmt.Errorf("%w: unknown frame type %d", errProtocol, h.typ)
	}
	if h.typ == frameRaft && h.kind == raftSnapshot {
		maxFrame = max(maxFrame, maxSnap)
	}
	if int64(h.len) > int64(maxFrame) {
		return h, fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", errProtocol, h.len, maxFrame)
	}
	if h.typ == framePing && h.len != 0 {
		return h, fmt.Errorf("%w: ping frame with a %d-byte body", errProtocol, h.len)
	}
	return h, nil
}

// frameReader reads frames from a buffered reader into a reused buffer.
type frameReader struct {
	r        *bufio.Reader
	maxFrame int
	maxSnap  int // for a Raft batch carrying a snapshot; below maxFrame: maxFrame
	hdr      [headerLen]byte
	buf      []byte
	// own: the body next returned last is a buffer of its own, which no
	// later frame reuses (a Raft frame of aliasFrom bytes or more): its
	// messages may alias it (alias.go).
	own bool
}

// keepBuf is the largest body buffer the reader keeps between frames; a
// bigger one (a snapshot) is dropped after use so an idle connection does
// not pin it. Appends under load come in frames of a few MiB (a Ready's
// messages to one peer): a smaller bound made the reader allocate, zero
// and grow a new buffer for each of them.
const keepBuf = 8 << 20

// readAhead is how much room the reader makes for a frame before its
// bytes arrive; beyond it the buffer grows fourfold as they do, so a peer
// announcing a huge frame and sending nothing costs at most this, and a
// large frame is copied about a third of its size while its buffer grows
// (doubling from 4 KiB copied all of it, and was a tenth of a busy quorum
// queue follower's CPU in clusterbench).
const readAhead = 1 << 20

// next reads one frame. The body is valid until the next call. Errors are
// io errors (the connection broke) or errProtocol.
func (fr *frameReader) next() (header, []byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return header{}, nil, err
	}
	h, err := parseHeader(fr.hdr[:], fr.maxFrame, fr.maxSnap)
	if err != nil {
		return h, nil, err
	}
	n := int(h.len)
	fr.own = h.typ == frameRaft && n >= aliasFrom
	if fr.own {
		// A buffer of its own, grown as the bytes arrive like the
		// reused one, and never reused: the messages may alias it.
		body, err := readBody(fr.r, nil, n)
		return h, body, err
	}
	if cap(fr.buf) > keepBuf && n <= keepBuf {
		fr.buf = nil
	}
	body, err := readBody(fr.r, fr.buf, n)
	if body != nil {
		fr.buf = body
	}
	return h, body, err
}

// readBody reads n bytes into buf (its capacity reused when it is enough),
// making room for at most readAhead bytes before they arrive and growing
// fourfold as they do.
func readBody(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, 0, min(n, max(readAhead, 2*cap(buf))))
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 4*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// appendRaftBatch appends a frameRaft frame for msgs to b.
func appendRaftBatch(b []byte, group Group, msgs []*raftpb.Message) ([]byte, error) {
	sizes, _ := raftBatchSizes(msgs)
	return appendRaftBatchSized(b, group, msgs, sizes)
}

// raftBatchSizes returns each message's encoded size and the most bytes
// its frame (header included) can take.
func raftBatchSizes(msgs []*raftpb.Message) (sizes []int, frame int) {
	sizes = make([]int, len(msgs))
	frame = headerLen + binary.MaxVarintLen64
	for i, m := range msgs {
		sizes[i] = proto.Size(m)
		frame += binary.MaxVarintLen64 + sizes[i]
	}
	return sizes, frame
}

// appendRaftBatchSized is appendRaftBatch with the messages' sizes
// (raftBatchSizes, just computed: they are also cached in the messages).
func appendRaftBatchSized(b []byte, group Group, msgs []*raftpb.Message, sizes []int) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, header{typ: frameRaft, id: group})
	b = binary.AppendUvarint(b, uint64(len(msgs)))
	// Sized once, the buffer grown once: appends carry megabytes of
	// entries, and every growth would copy them again.
	total := 0
	for _, s := range sizes {
		total += binary.MaxVarintLen64 + s
	}
	b = slices.Grow(b, total)
	opts := proto.MarshalOptions{UseCachedSize: true}
	for i, m := range msgs {
		b = binary.AppendUvarint(b, uint64(sizes[i]))
		var err error
		if b, err = opts.MarshalAppend(b, m); err != nil {
			return b[:start], fmt.Errorf("transport: marshal raft message: %w", err)
		}
	}
	return setBodyLen(b, start)
}

// errFrameTooBig is returned when an outgoing frame exceeds 4 GiB; the
// receiver's MaxFrame is checked separately.
var errFrameTooBig = errors.New("transport: frame too big")

// setBodyLen fills in the length of the frame that starts at b[start:].
func setBodyLen(b []byte, start int) ([]byte, error) {
	n := len(b) - start - headerLen
	if uint64(n) > uint64(^uint32(0)) {
		return b[:start], errFrameTooBig
	}
	binary.BigEndian.PutUint32(b[start+10:start+14], uint32(n))
	return b, nil
}

// appendFrame appends a frame with the given body parts to b.
func appendFrame(b []byte, typ, kind uint8, id uint64, prefix, body []byte) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, header{typ: typ, kind: kind, id: id})
	b = append(b, prefix...)
	b = append(b, body...)
	return setBodyLen(b, start)
}

// decodeRaftBatch decodes a frameRaft body. It never panics on bad input.
// With alias (body is the frame's own buffer, never reused) the messages'
// entries and contexts may point into body instead of being copied.
func decodeRaftBatch(body []byte, alias bool) ([]*raftpb.Message, error) {
	count, n := binary.Uvarint(body)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad raft batch count", errProtocol)
	}
	body = body[n:]
	// Every message takes at least its one-byte length: a count larger
	// than the rest of the body is a lie, not an allocation to honour.
	if count > uint64(len(body)) {
		return nil, fmt.Errorf("%w: raft batch claims %d messages in %d bytes", errProtocol, count, len(body))
	}
	msgs := make([]*raftpb.Message, 0, count)
	for i := uint64(0); i < count; i++ {
		size, n := binary.Uvarint(body)
		if n <= 0 || size > uint64(len(body)-n) {
			return nil, fmt.Errorf("%w: bad raft message length in batch", errProtocol)
		}
		m := &raftpb.Message{}
		if alias && decodeMessageAlias(body[n:n+int(size)], m) {
			msgs = append(msgs, m)
			body = body[n+int(size):]
			continue
		}
		m = &raftpb.Message{}
		if err := proto.Unmarshal(body[n:n+int(size)], m); err != nil {
			return nil, fmt.Errorf("%w: raft message: %v", errProtocol, err)
		}
		msgs = append(msgs, m)
		body = body[n+int(size):]
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the raft batch", errProtocol, len(body))
	}
	return msgs, nil
}

// decodeRequest splits a frameRequest body into its timeout (0: none) and
// the request body.
func decodeRequest(body []byte) (timeoutMs uint64, rest []byte, err error) {
	t, n := binary.Uvarint(body)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad request timeout", errProtocol)
	}
	return t, body[n:], nil
}
