package wal

import "sync"

// A save's record is encoded into a buffer from recBufs and given back
// once the writer has copied it into its batch: records carry a Ready's
// entries (tens to hundreds of KiB under load), and a fresh buffer each
// time costs its zeroing, its garbage and the scavenger's madvise calls
// beside the copy that fills it.
var recBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledRec bounds the buffers kept: a snapshot-sized record's is not.
const maxPooledRec = 1 << 20

func getRecBuf() []byte { return (*recBufs.Get().(*[]byte))[:0] }

func putRecBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledRec {
		return
	}
	b = b[:0]
	recBufs.Put(&b)
}
