package wal

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestSnapshotCompactRestart: CreateSnapshot is durable when it returns,
// Compact drops the entries up to it, and a restart brings back the
// snapshot (data, metadata, configuration), the base term and the
// entries after it — as etcd's MemoryStorage shows them.
func TestSnapshotCompactRestart(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g := w.Group(4)
	ms := raft.NewMemoryStorage()
	mustSave(t, g, hardState(2, 1, 8), ents(1, 10, 2), nil)
	_ = ms.Append(ents(1, 10, 2))
	_ = ms.SetHardState(hardState(2, 1, 8))
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	got, err := g.CreateSnapshot(6, cs, []byte("state@6"))
	if err != nil {
		t.Fatal(err)
	}
	if got.GetMetadata().GetIndex() != 6 || got.GetMetadata().GetTerm() != 2 || string(got.GetData()) != "state@6" {
		t.Fatalf("CreateSnapshot returned %v", got)
	}
	_, _ = ms.CreateSnapshot(6, cs, []byte("state@6"))
	if err := g.Compact(5); err != nil {
		t.Fatal(err)
	}
	_ = ms.Compact(5)
	// A save after the compaction: its fsync covers the compaction too.
	mustSave(t, g, hardState(2, 1, 9), nil, nil)
	_ = ms.SetHardState(hardState(2, 1, 9))
	if a, b := canonical(g), canonical(ms); a != b {
		t.Fatalf("\n got %s\nwant %s", a, b)
	}
	if _, err := g.Entries(5, 7, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries below the compaction: %v", err)
	}
	if err := g.Compact(5); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("compacting again: %v, want ErrCompacted", err)
	}
	if err := g.Compact(8); err == nil {
		t.Fatal("compacting past the snapshot succeeded")
	}
	if _, err := g.CreateSnapshot(6, nil, nil); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("an old snapshot: %v, want ErrSnapOutOfDate", err)
	}
	if _, err := g.CreateSnapshot(11, nil, nil); err == nil {
		t.Fatal("a snapshot past the last index succeeded")
	}
	// Power loss.
	{
		w2 := openWAL(t, m.Crash(nil), Options{})
		g2 := w2.Group(4)
		if a, b := canonical(g2), canonical(ms); a != b {
			t.Fatalf("after restart:\n got %s\nwant %s", a, b)
		}
		_, cs2, _ := g2.InitialState()
		if len(cs2.GetVoters()) != 3 || len(cs2.GetLearners()) != 1 {
			t.Fatalf("InitialState configuration %v, want the snapshot's", cs2)
		}
		_ = w2.Close()
	}
	_ = w.Close()
}

// TestLeaderSnapshotReplacesTheLog: a Save carrying a snapshot from the
// leader replaces the whole log, together with the entries and hard state
// saved with it, across a restart; an older snapshot is refused.
func TestLeaderSnapshotReplacesTheLog(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g := w.Group(1)
	mustSave(t, g, hardState(1, 1, 2), ents(1, 5, 1), nil)
	snap := snapshot(20, 3, "leader-state", 1, 2, 3)
	mustSave(t, g, hardState(3, 2, 21), ents(21, 22, 3), snap)
	ms := raft.NewMemoryStorage()
	_ = ms.ApplySnapshot(snap)
	_ = ms.Append(ents(21, 22, 3))
	_ = ms.SetHardState(hardState(3, 2, 21))
	want := canonical(ms)
	if got := canonical(g); got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
	if err := save(t, g, nil, nil, snapshot(10, 2, "older")); !errors.Is(err, raft.ErrSnapOutOfDate) {
		t.Fatalf("an older snapshot: %v, want ErrSnapOutOfDate", err)
	}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	if got := canonical(w2.Group(1)); got != want {
		t.Fatalf("after restart:\n got %s\nwant %s", got, want)
	}
}

// TestRemovedGroupStaysRemoved: Remove is durable when it returns; a
// restart does not bring the group back, and its id can start afresh.
func TestRemovedGroupStaysRemoved(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g1, g2 := w.Group(1), w.Group(2)
	mustSave(t, g1, hardState(1, 1, 0), ents(1, 3, 1), nil)
	mustSave(t, g2, hardState(1, 1, 0), ents(1, 3, 1), nil)
	if err := g1.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := save(t, g1, nil, ents(4, 4, 1), nil); !errors.Is(err, ErrRemoved) {
		t.Fatalf("save on a removed group: %v, want ErrRemoved", err)
	}
	if _, err := g1.LastIndex(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("LastIndex on a removed group: %v", err)
	}
	if got := w.Groups(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("Groups after Remove = %v, want [2]", got)
	}
	fs2 := m.Crash(nil)
	w2 := openWAL(t, fs2, Options{})
	if got := w2.Groups(); len(got) != 1 || got[0] != 2 {
		t.Fatalf("Groups after restart = %v, want [2]", got)
	}
	// The id starts afresh, and that survives a restart too.
	n := w2.Group(1)
	if last, _ := n.LastIndex(); last != 0 {
		t.Fatalf("a removed group's id came back with entries up to %d", last)
	}
	mustSave(t, n, hardState(5, 5, 0), ents(1, 1, 5), nil)
	want := canonical(n)
	_ = w2.Close()
	_ = w.Close()
	w3 := openWAL(t, fs2.Crash(nil), Options{})
	defer w3.Close()
	if got := w3.Groups(); len(got) != 2 {
		t.Fatalf("Groups after the second restart = %v, want [1 2]", got)
	}
	if got := canonical(w3.Group(1)); got != want {
		t.Fatalf("the new group 1 after restart:\n got %s\nwant %s", got, want)
	}
}
