package raftnode

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// noteStorage is a MemoryStorage that counts the saves that only move the
// commit index (raft.MustSync false) and the NoteCommit calls.
type noteStorage struct {
	*MemoryStorage
	mu          sync.Mutex
	last        *raftpb.HardState
	commitSaves int
	notes       int
}

func (s *noteStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) {
	s.mu.Lock()
	if hs != nil && !raft.IsEmptyHardState(hs) {
		if len(ents) == 0 && raft.IsEmptySnap(snap) && s.last != nil && !raft.MustSync(hs, s.last, 0) {
			s.commitSaves++
		}
		s.last = hs
	}
	s.mu.Unlock()
	s.MemoryStorage.Save(hs, ents, snap, done)
}

func (s *noteStorage) NoteCommit(hs *raftpb.HardState) {
	s.mu.Lock()
	s.notes++
	s.mu.Unlock()
	s.MemoryStorage.NoteCommit(hs)
}

func (s *noteStorage) counts() (commitSaves, notes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitSaves, s.notes
}

// TestCommitOnlyReadyIsNotSaved: every append is followed, on the leader
// and on each follower, by a Ready whose hard state only moves the commit
// index. None of them is saved (an fsync waited for, on a WAL); each is
// noted, and every replica still applies every entry.
func TestCommitOnlyReadyIsNotSaved(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	stores, groups, sms := map[NodeID]*noteStorage{}, map[NodeID]*Group{}, map[NodeID]*countSM{}
	for id := NodeID(1); id <= 3; id++ {
		ep := net.Endpoint(id)
		st := &noteStorage{MemoryStorage: NewMemoryStorage()}
		h := NewHost(HostConfig{
			ID: id, Transport: ep, Clock: fc,
			Logger:     slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			NewStorage: func(uint64) Storage { return st },
		})
		ep.SetHandler(h)
		t.Cleanup(h.Close)
		sms[id] = &countSM{}
		g, err := h.Start(4, []NodeID{1, 2, 3}, nil, sms[id])
		if err != nil {
			t.Fatal(err)
		}
		stores[id], groups[id] = st, g
	}
	groups[1].CampaignFirst()
	tickUntil(t, fc, func() bool {
		return groups[1].IsLeader() && groups[2].Status().Leader == 1 && groups[3].Status().Leader == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 20
	for range n {
		if _, err := groups[1].Propose(ctx, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for id := NodeID(1); id <= 3; id++ {
		sm := sms[id]
		if !waitUntil(10*time.Second, func() bool { sm.mu.Lock(); defer sm.mu.Unlock(); return sm.n == n }) {
			t.Fatalf("node %d did not apply the %d entries", id, n)
		}
		saves, notes := stores[id].counts()
		t.Logf("node %d: %d commit-only saves, %d noted", id, saves, notes)
		if saves != 0 || notes == 0 {
			t.Errorf("node %d: %d commit-only saves and %d commits noted; want none saved, some noted", id, saves, notes)
		}
	}
}

// TestRestartWithCommitBelowSnapshot: a storage whose commit index is
// older than its snapshot (the commit noted, the snapshot recorded, a
// crash before the next save) starts: Raft refuses a commit index below
// its first index, so the group raises it to the snapshot's.
func TestRestartWithCommitBelowSnapshot(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	st := NewMemoryStorage()
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(10), Term: proto.Uint64(2), ConfState: &raftpb.ConfState{Voters: []uint64{1}},
	}}
	if err := st.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := st.SetHardState(&raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(1), Commit: proto.Uint64(5)}); err != nil {
		t.Fatal(err)
	}
	ep := net.Endpoint(1)
	h := NewHost(HostConfig{
		ID: 1, Transport: ep, Clock: fc,
		Logger:     slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
		NewStorage: func(uint64) Storage { return st },
	})
	ep.SetHandler(h)
	t.Cleanup(h.Close)
	sm := &countSM{}
	g, err := h.Start(4, nil, nil, sm)
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := 1; want <= 2; want++ { // applied after the snapshot, in order
		if v, err := g.Propose(ctx, []byte("x")); err != nil || v != want {
			t.Fatalf("Propose = %v, %v; want %d", v, err, want)
		}
	}
}
