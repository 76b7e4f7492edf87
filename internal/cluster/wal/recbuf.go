package wal

import (
	"math/bits"
	"sync"
)

// A save's record is encoded into a pooled buffer and given back once
// the writer has written it: records carry a Ready's entries (tens of KiB
// to a few MiB under load), and a fresh buffer each time costs its
// zeroing — page faults on memory the runtime had returned to the OS —
// and its garbage, beside the copy that fills it. Buffers are pooled by
// size class (class k holds buffers of at least minRecBuf<<k bytes), so a
// large save finds a large buffer instead of growing a small one.
const (
	minRecBuf  = 4 << 10
	recClasses = 12 // up to minRecBuf<<11 = 8 MiB
)

var recBufs [recClasses]sync.Pool

// getRecBuf returns an empty buffer with room for about n bytes (a
// record's sizeEstimate: encoding grows it if that was short).
func getRecBuf(n int) []byte {
	k := 0
	if n > minRecBuf {
		k = bits.Len(uint((n - 1) / minRecBuf))
	}
	if k >= recClasses {
		return make([]byte, 0, n)
	}
	if b, ok := recBufs[k].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, minRecBuf<<k)
}

// putRecBuf gives b back to the class its capacity fills.
func putRecBuf(b []byte) {
	c := cap(b)
	if c < minRecBuf {
		return
	}
	k := bits.Len(uint(c/minRecBuf)) - 1
	if k >= recClasses {
		return
	}
	b = b[:0]
	recBufs[k].Put(&b)
}
