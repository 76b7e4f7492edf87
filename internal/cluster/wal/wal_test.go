package wal

import (
	"errors"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestRoundTrip: what was saved reads back the same before and after a
// restart, through every raft.Storage method, for several groups.
func TestRoundTrip(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g1, g2 := w.Group(1), w.Group(2)
	mustSave(t, g1, hardState(1, 1, 0), ents(1, 3, 1), nil)
	mustSave(t, g2, hardState(2, 3, 1), ents(1, 1, 2), nil)
	mustSave(t, g1, hardState(1, 1, 3), ents(4, 5, 1), nil)
	want1, want2 := canonical(g1), canonical(g2)
	if got := w.Groups(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("Groups = %v, want [1 2]", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	if got := w2.Groups(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("recovered Groups = %v, want [1 2]", got)
	}
	if got := canonical(w2.Group(1)); got != want1 {
		t.Fatalf("group 1 after restart:\n got %s\nwant %s", got, want1)
	}
	if got := canonical(w2.Group(2)); got != want2 {
		t.Fatalf("group 2 after restart:\n got %s\nwant %s", got, want2)
	}
	g := w2.Group(1)
	es, err := g.Entries(2, 5, 1<<20)
	if err != nil || len(es) != 3 || es[0].GetIndex() != 2 || string(es[2].GetData()) != "e4-t1" {
		t.Fatalf("Entries(2,5) = %v, %v", es, err)
	}
	if es, _ := g.Entries(1, 6, 0); len(es) != 1 {
		t.Fatalf("Entries with maxSize 0 returned %d entries, want 1", len(es))
	}
	if _, err := g.Entries(0, 2, 1<<20); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Entries(0, 2): %v, want ErrCompacted", err)
	}
	if _, err := g.Entries(1, 7, 1<<20); err == nil {
		t.Fatal("Entries past the last index succeeded")
	}
	if tm, err := g.Term(0); err != nil || tm != 0 {
		t.Fatalf("Term(0) = %d, %v", tm, err)
	}
	if _, err := g.Term(6); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(6): %v, want ErrUnavailable", err)
	}
	// A group never saved has no state and is not listed.
	if canonical(w2.Group(9)) != canonical(raft.NewMemoryStorage()) {
		t.Fatalf("an unknown group is not empty: %s", canonical(w2.Group(9)))
	}
	if got := w2.Groups(); len(got) != 2 {
		t.Fatalf("Groups after asking for an empty group = %v", got)
	}
}

// TestOverlapTruncatesAcrossRestart: entries that overlap the log replace
// its conflicting suffix, in memory and after a restart, as etcd's
// MemoryStorage.Append does.
func TestOverlapTruncatesAcrossRestart(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g := w.Group(7)
	ms := raft.NewMemoryStorage()
	step := func(hs *raftpb.HardState, es []*raftpb.Entry) {
		t.Helper()
		mustSave(t, g, hs, es, nil)
		_ = ms.Append(es)
		_ = ms.SetHardState(hs)
		if got, want := canonical(g), canonical(ms); got != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	}
	step(hardState(1, 1, 0), ents(1, 10, 1))
	step(hardState(2, 2, 5), ents(6, 8, 2))  // replaces 6..10 with 6..8 of term 2
	step(hardState(3, 3, 5), ents(8, 9, 3))  // replaces 8 on
	step(hardState(3, 3, 6), ents(3, 4, 1))  // same terms again: log cut after 4 (etcd semantics)
	step(hardState(3, 3, 6), ents(5, 12, 3)) // grows again
	want := canonical(ms)
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	if got := canonical(w2.Group(7)); got != want {
		t.Fatalf("after restart:\n got %s\nwant %s", got, want)
	}
	// Appends after the restart still truncate correctly.
	g2 := w2.Group(7)
	mustSave(t, g2, nil, ents(11, 11, 4), nil)
	_ = ms.Append(ents(11, 11, 4))
	if got, want := canonical(g2), canonical(ms); got != want {
		t.Fatalf("append after restart:\n got %s\nwant %s", got, want)
	}
}

// TestSaveRefusesAGap: entries that would leave a hole are refused, not
// written.
func TestSaveRefusesAGap(t *testing.T) {
	w := openWAL(t, vfs.NewMem(), Options{})
	defer w.Close()
	g := w.Group(1)
	mustSave(t, g, nil, ents(1, 3, 1), nil)
	if err := save(t, g, nil, ents(5, 6, 1), nil); err == nil {
		t.Fatal("a save leaving a gap was accepted")
	}
	if err := save(t, g, nil, []*raftpb.Entry{ent(4, 1), ent(6, 1)}, nil); err == nil {
		t.Fatal("non-consecutive entries were accepted")
	}
	if last, _ := g.LastIndex(); last != 3 {
		t.Fatalf("last index %d after refused saves, want 3", last)
	}
}
