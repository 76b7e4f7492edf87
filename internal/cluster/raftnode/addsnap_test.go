package raftnode

import (
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

func TestAddedSnapshot(t *testing.T) {
	cs := func(voters, learners []uint64) *raftpb.ConfState {
		return &raftpb.ConfState{Voters: voters, Learners: learners}
	}
	for _, tc := range []struct {
		prev, next *raftpb.ConfState
		want       bool
	}{
		{cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2, 3}, []uint64{4}), true},     // a learner added
		{cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2, 3, 4}, nil), true},          // a voter added
		{cs([]uint64{1, 2, 3}, []uint64{4}), cs([]uint64{1, 2, 3, 4}, nil), false}, // a promotion
		{cs([]uint64{1, 2, 3}, nil), cs([]uint64{1, 2}, nil), false},               // a removal
		{nil, cs([]uint64{1}, nil), true},
	} {
		if got := addedSnapshot(tc.prev, tc.next); got != tc.want {
			t.Errorf("%v → %v: %v, want %v", tc.prev, tc.next, got, tc.want)
		}
	}
}
