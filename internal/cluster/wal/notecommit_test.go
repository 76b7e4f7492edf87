package wal

import (
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestNoteCommitRidesWithTheNextSave: a noted commit index is the group's
// hard state at once, writes nothing by itself (a crash keeps the last
// saved one), and the next save records it even when that save carries
// no hard state of its own.
func TestNoteCommitRidesWithTheNextSave(t *testing.T) {
	m := vfs.NewCrashable()
	w := openWAL(t, m, Options{})
	g := w.Group(3)
	mustSave(t, g, hardState(2, 1, 0), ents(1, 5, 2), nil)
	fsyncs := w.fsyncs.Load()
	g.NoteCommit(hardState(2, 1, 4))
	if hs, _, _ := g.InitialState(); hs.GetCommit() != 4 {
		t.Fatalf("after NoteCommit the hard state's commit is %d, want 4", hs.GetCommit())
	}
	barrier(t, w)
	if n := w.fsyncs.Load(); n != fsyncs {
		t.Fatalf("NoteCommit wrote and synced (%d fsyncs, %d before)", n, fsyncs)
	}
	// A crash now keeps the saved commit index.
	w1 := openWAL(t, m.Crash(nil), Options{})
	if hs, _, _ := w1.Group(3).InitialState(); hs.GetCommit() != 0 || hs.GetTerm() != 2 || hs.GetVote() != 1 {
		t.Fatalf("after a crash: hs %v, want the saved 2/1/0", hs)
	}
	_ = w1.Close()

	mustSave(t, g, nil, ents(6, 6, 2), nil) // no hard state of its own
	g.NoteCommit(hardState(2, 1, 6))        // noted after: not in that record
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	g2 := w2.Group(3)
	if hs, _, _ := g2.InitialState(); hs.GetCommit() != 4 || hs.GetTerm() != 2 || hs.GetVote() != 1 {
		t.Fatalf("after the next save and a crash: hs %v, want 2/1/4", hs)
	}
	if last, _ := g2.LastIndex(); last != 6 {
		t.Fatalf("last index %d, want 6", last)
	}
	_ = w.Close()
}
