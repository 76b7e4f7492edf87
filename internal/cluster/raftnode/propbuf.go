package raftnode

import (
	"encoding/binary"
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

// entryBufCap is the capacity of a pooled entry buffer: the largest batch
// entry (appendProposals' bound for maxBatchBytes of data in at most
// maxBatchItems items). A single proposal larger than this is written
// into a buffer of its own, not pooled.
const entryBufCap = maxBatchBytes + 1 + binary.MaxVarintLen64 + maxBatchItems*(binary.MaxVarintLen64+maxHeaderLen)

var entryBufs = sync.Pool{New: func() any { b := make([]byte, 0, entryBufCap); return &b }}

// entryBuf returns an empty buffer for an entry of up to n bytes: a pooled
// one when n fits, and whether it is pooled.
func entryBuf(n int) ([]byte, bool) {
	if n > entryBufCap {
		return make([]byte, 0, n), false
	}
	return (*entryBufs.Get().(*[]byte))[:0], true
}

func putEntryBuf(b []byte) {
	b = b[:0]
	entryBufs.Put(&b)
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
