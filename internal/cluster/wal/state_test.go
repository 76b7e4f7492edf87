package wal

import (
	"testing"
)

// TestReplayAfterAGap: when the segment holding a group's oldest records
// was deleted, replay starts mid-log; a later append that rewrites the log
// from below where replay assumed it began, and a compaction that names
// the real base, must rebuild the exact state (a crash test once found
// entries 9..29 dropped because the first surviving record was a stale
// append at 10 that a later append at 9 had overwritten).
func TestReplayAfterAGap(t *testing.T) {
	var s logState
	for _, r := range []*record{
		{typ: recSave, ents: ents(10, 11, 5)}, // stale: overwritten by the next two
		{typ: recSave, ents: ents(9, 9, 6)},
		{typ: recSave, ents: ents(10, 12, 6), hs: hardState(6, 1, 9)},
		{typ: recCompact, index: 8, term: 4},
		{typ: recSnapshot, snap: snapshot(11, 6, "s")},
	} {
		s.apply(r)
	}
	if err := s.finish(); err != nil {
		t.Fatal(err)
	}
	if s.base != 8 || s.baseTerm != 4 || s.lastIndex() != 12 {
		t.Fatalf("base %d/%d last %d, want base 8 (term 4), last 12", s.base, s.baseTerm, s.lastIndex())
	}
	for i, e := range s.ents {
		if e.GetIndex() != 9+uint64(i) || e.GetTerm() != 6 {
			t.Fatalf("entry %d: %d/%d, want term 6", 9+i, e.GetIndex(), e.GetTerm())
		}
	}
	// Without a compaction or checkpoint naming the base, the snapshot
	// settles it if it covers the gap, else the log is missing a segment.
	var u logState
	u.apply(&record{typ: recSave, ents: ents(20, 22, 3)})
	if err := u.finish(); err == nil {
		t.Fatal("a log starting after a gap with nothing before it was accepted")
	}
	u.apply(&record{typ: recSnapshot, snap: snapshot(21, 3, "s")})
	if err := u.finish(); err != nil || u.base != 21 || u.lastIndex() != 22 {
		t.Fatalf("finish: %v, base %d last %d; want the snapshot's base 21, last 22", err, u.base, u.lastIndex())
	}
}
