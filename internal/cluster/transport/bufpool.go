package transport

import (
	"math/bits"
	"sync"
)

// Frame buffers (SendRaft's and Request's encoding, and the frames over a
// chunk that the send queue takes as they are) are pooled by size class:
// class k holds buffers of at least minPooled<<k bytes. One pool of mixed
// sizes handed a small buffer to a send of megabytes of appends, which
// then allocated a new one; Go zeroes every large allocation, and that
// zeroing was a tenth of a busy quorum queue leader's CPU (clusterbench,
// appendRaftBatch). sync.Pool lets the GC free what is not used.
const (
	minPooled   = 4 << 10
	poolClasses = 13 // up to minPooled<<12 = 16 MiB
)

var framePools [poolClasses]sync.Pool

// classUp is the smallest class whose buffers hold n bytes (poolClasses
// when none does).
func classUp(n int) int {
	if n <= minPooled {
		return 0
	}
	return min(bits.Len(uint((n-1)/minPooled)), poolClasses)
}

// getFrameBuf returns an empty buffer with room for at least n bytes.
func getFrameBuf(n int) *[]byte {
	k := classUp(n)
	if k == poolClasses {
		b := make([]byte, 0, n)
		return &b
	}
	if v, ok := framePools[k].Get().(*[]byte); ok {
		*v = (*v)[:0]
		return v
	}
	b := make([]byte, 0, minPooled<<k)
	return &b
}

// putFrameBuf gives b back to the class its capacity fills; buffers
// smaller than minPooled or larger than the largest class are dropped.
func putFrameBuf(b *[]byte) {
	c := cap(*b)
	if c < minPooled {
		return
	}
	k := bits.Len(uint(c/minPooled)) - 1 // minPooled<<k <= c
	if k >= poolClasses {
		return
	}
	*b = (*b)[:0]
	framePools[k].Put(b)
}
