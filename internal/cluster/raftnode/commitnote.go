package raftnode

import (
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A Ready whose only durable change is the commit index (raft.MustSync
// false: no entries, no snapshot, the same term and vote) is not saved and
// waited for: handleReady hands the hard state to Storage.NoteCommit,
// sends the Ready's messages and applies its entries at once. Under load
// every append is followed by such a Ready on the leader and on each
// follower (the commit the followers' acknowledgements bring, then the
// leader's append that carries it), so each used to cost an fsync and a
// wait for it on all three replicas: half of a busy group's fsyncs.
//
// A storage may therefore hold a commit index older than a snapshot it
// recorded after it (the commit index noted, the snapshot written, a
// crash before the next save). Raft refuses to start with a commit index
// below its snapshot, so the group's RawNode reads its initial state
// through commitFloor, which raises the commit index to the snapshot's:
// a snapshot holds only applied, hence committed, entries.

// commitFloor is a Storage whose InitialState reports a commit index of at
// least floor.
type commitFloor struct {
	Storage
	floor uint64
}

// InitialState implements raft.Storage.
func (s commitFloor) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, cs, err := s.Storage.InitialState()
	if err == nil && hs != nil && hs.GetCommit() < s.floor && (hs.GetTerm() != 0 || hs.GetVote() != 0 || hs.GetCommit() != 0) {
		hs = proto.Clone(hs).(*raftpb.HardState)
		hs.Commit = proto.Uint64(s.floor)
	}
	return hs, cs, err
}
