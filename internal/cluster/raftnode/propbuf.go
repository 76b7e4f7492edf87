package raftnode

import (
	"math/bits"
	"sync"
)

// The entry a proposal (or a batch of them) is written into lives only
// until Raft has done with it: a leader's Raft copies every proposed entry
// into its log (etcd raft's appendEntry clones it), and a follower's Raft
// forwards the MsgProp holding it to the leader in the group's next
// Ready, whose send marshals it on this goroutine (Transport.SendRaft
// keeps nothing). So the entry buffers come from a pool and go back once
// the Ready after their proposal is sent (Group.releaseEntryBufs): each
// was a fresh allocation of up to a batch's size, zeroed and then
// copied into, a few percent of a publishing node's CPU in clusterbench.

// Entry buffers are pooled by size class, class k holding buffers of
// minEntryBuf<<k bytes, up to the largest batch entry (appendProposals'
// bound for maxBatchBytes of data in maxBatchItems items): a settlement's
// few bytes do not take a batch-sized buffer, nor a batch a small one.
// A smaller entry is allocated as before (a copy of a few hundred bytes
// costs less than the pool); a larger one is not pooled.
const (
	minEntryBuf  = 4 << 10
	entryClasses = 8 // up to minEntryBuf<<7 = 512 KiB
)

var entryBufs [entryClasses]sync.Pool

// entryBuf returns an empty buffer for an entry of up to n bytes: a pooled
// one when n has a class, and whether it is pooled.
func entryBuf(n int) ([]byte, bool) {
	if n < minEntryBuf/2 {
		return make([]byte, 0, n), false
	}
	k := 0
	if n > minEntryBuf {
		k = bits.Len(uint((n - 1) / minEntryBuf))
	}
	if k >= entryClasses {
		return make([]byte, 0, n), false
	}
	if b, ok := entryBufs[k].Get().(*[]byte); ok {
		return (*b)[:0], true
	}
	return make([]byte, 0, minEntryBuf<<k), true
}

// putEntryBuf gives b back to the class its capacity fills.
func putEntryBuf(b []byte) {
	c := cap(b)
	if c < minEntryBuf {
		return
	}
	k := bits.Len(uint(c/minEntryBuf)) - 1
	if k >= entryClasses {
		return
	}
	b = b[:0]
	entryBufs[k].Put(&b)
}

// holdEntryBuf keeps b, the data of an entry just proposed, until the
// Ready that forwards it has been sent.
func (g *Group) holdEntryBuf(b []byte) { g.entryBufs = append(g.entryBufs, b) }

// releaseEntryBufs gives back the first n held entry buffers: those held
// before the Ready just sent was taken, whose MsgProps (on a follower) it
// carried. Buffers held later wait for the next Ready.
func (g *Group) releaseEntryBufs(n int) {
	if n == 0 {
		return
	}
	for i, b := range g.entryBufs[:n] {
		putEntryBuf(b)
		g.entryBufs[i] = nil
	}
	rest := copy(g.entryBufs, g.entryBufs[n:])
	clear(g.entryBufs[rest:])
	g.entryBufs = g.entryBufs[:rest]
}
