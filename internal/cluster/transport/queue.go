package transport

import "sync"

// chunkSize is the size of the pooled chunks a send queue is made of.
const chunkSize = 64 << 10

var chunks = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// sendQueue holds the frames waiting for a connection's writer as a list
// of chunks: appending never copies what is already queued (a growing
// slice would, and did: most of the benchmark's time went to growslice),
// the writer hands the whole list to one writev (net.Buffers), and an
// idle connection pins no memory — chunks go back to a shared pool.
// Frames never straddle chunks; a frame larger than a chunk gets a chunk
// of its own, not pooled.
type sendQueue struct {
	bufs  [][]byte
	bytes int
}

// push appends a copy of frame.
func (q *sendQueue) push(frame []byte) {
	q.bytes += len(frame)
	q.copyIn(frame)
}

// pushOwned queues frame, which the queue may keep: a frame over a chunk
// goes in as it is, without a copy.
func (q *sendQueue) pushOwned(frame []byte) {
	if len(frame) <= chunkSize {
		q.push(frame)
		return
	}
	q.bytes += len(frame)
	q.bufs = append(q.bufs, frame)
}

func (q *sendQueue) copyIn(frame []byte) {
	if n := len(q.bufs); n > 0 {
		last := q.bufs[n-1]
		if cap(last) == chunkSize && cap(last)-len(last) >= len(frame) {
			q.bufs[n-1] = append(last, frame...)
			return
		}
	}
	if len(frame) > chunkSize {
		q.bufs = append(q.bufs, append(make([]byte, 0, len(frame)), frame...))
		return
	}
	c := *chunks.Get().(*[]byte)
	q.bufs = append(q.bufs, append(c[:0], frame...))
}

// take moves the queued chunks out, leaving q empty; the caller gives
// them back with release once written.
func (q *sendQueue) take(into [][]byte) [][]byte {
	into = append(into[:0], q.bufs...)
	clear(q.bufs)
	q.bufs = q.bufs[:0]
	q.bytes = 0
	return into
}

// release returns written chunks to the pool.
func release(bufs [][]byte) {
	for i, b := range bufs {
		if cap(b) == chunkSize {
			b = b[:0]
			chunks.Put(&b)
		} else {
			putFrameBuf(&b) // a frame pushOwned took from SendRaft
		}
		bufs[i] = nil
	}
}
