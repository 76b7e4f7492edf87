package wal

import (
	"errors"
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// logState is one group's Raft state as the records build it. The same
// apply methods run when a save is made (on the live state, after
// validation) and when recovery replays the records, so what a restart
// finds is what the running node had.
type logState struct {
	hs   *raftpb.HardState // nil: none recorded
	snap *raftpb.Snapshot  // nil: none recorded
	// base is the index before the first entry held (the snapshot's or
	// the last compaction's), baseTerm its term; ents[i] has index
	// base+1+i.
	base, baseTerm uint64
	ents           []*raftpb.Entry
	// baseUnknown is set by recovery when a group's first surviving
	// record appends after a gap (its earlier records were in a deleted
	// segment): a later snapshot, compaction or checkpoint must then say
	// what the base is, or the log is missing something.
	baseUnknown bool
}

// errGap is a Save whose entries do not join the log.
var errGap = errors.New("wal: entries leave a gap after the last index")

func (s *logState) lastIndex() uint64 { return s.base + uint64(len(s.ents)) }

func (s *logState) snapIndex() uint64 { return s.snap.GetMetadata().GetIndex() }

// term returns the term of entry i, which must lie in [base, lastIndex].
func (s *logState) term(i uint64) (uint64, error) {
	switch {
	case i < s.base:
		return 0, raft.ErrCompacted
	case i == s.base:
		return s.baseTerm, nil
	case i > s.lastIndex():
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-s.base-1].GetTerm(), nil
}

// applySnap replaces the log with a snapshot received from the leader.
func (s *logState) applySnap(snap *raftpb.Snapshot) {
	s.snap = snap
	s.base, s.baseTerm = snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm()
	s.ents = nil
	s.baseUnknown = false
}

// appendEnts appends ents (consecutive) with Raft's semantics: entries at
// or below the base are ignored, a conflicting suffix is replaced. A gap
// after the last index is an error, unless lenient (recovery), where it
// starts the log afresh at the first entry.
func (s *logState) appendEnts(ents []*raftpb.Entry, lenient bool) error {
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if lenient && s.baseUnknown && first <= s.base {
		// The base was only assumed (a gap); this append rewrites the log
		// from below it, so the log really starts lower.
		s.base, s.baseTerm, s.ents = first-1, 0, nil
	}
	if first+uint64(len(ents))-1 <= s.base {
		return nil
	}
	if first <= s.base {
		ents = ents[s.base+1-first:]
		first = s.base + 1
	}
	if first > s.lastIndex()+1 {
		if !lenient {
			return fmt.Errorf("%w: appending at %d, last index %d", errGap, first, s.lastIndex())
		}
		s.base, s.baseTerm, s.ents, s.baseUnknown = first-1, 0, nil, true
	}
	keep := int(first - s.base - 1)
	// A fresh slice when truncating: entries handed out by Entries stay
	// untouched, as raft.Storage requires.
	if keep < len(s.ents) {
		s.ents = append(s.ents[:keep:keep], ents...)
	} else {
		s.ents = append(s.ents, ents...)
	}
	return nil
}

// applySave applies a save: snapshot first, then entries, then the hard
// state, all or nothing as the record that carries them.
func (s *logState) applySave(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, lenient bool) error {
	if snap != nil {
		s.applySnap(snap)
	}
	if err := s.appendEnts(ents, lenient); err != nil {
		return err
	}
	if hs != nil {
		s.hs = hs
	}
	return nil
}

// applyCompact drops the entries up to index (whose term is term).
func (s *logState) applyCompact(index, term uint64) {
	if !s.baseUnknown && index <= s.base {
		return
	}
	switch {
	case index >= s.lastIndex():
		s.ents = nil
	case index > s.base:
		s.ents = append([]*raftpb.Entry(nil), s.ents[index-s.base:]...)
	case index == s.base: // only when the base is unknown: now it is known
	default:
		return // below an unknown base: says nothing about it
	}
	s.base, s.baseTerm, s.baseUnknown = index, term, false
}

// applyCheckpoint replaces the whole state.
func (s *logState) applyCheckpoint(r *record) {
	*s = logState{hs: r.hs, snap: r.snap, base: r.index, baseTerm: r.term, ents: r.ents}
}

// apply replays a decoded record (recovery).
func (s *logState) apply(r *record) {
	switch r.typ {
	case recSave:
		_ = s.applySave(r.hs, r.ents, r.snap, true) // lenient never fails
	case recSnapshot:
		s.snap = r.snap
	case recCompact:
		s.applyCompact(r.index, r.term)
	case recCheckpoint:
		s.applyCheckpoint(r)
	}
}

// finish settles what recovery left: a base still unknown is taken from
// the snapshot if the snapshot covers it, else the log has lost entries.
func (s *logState) finish() error {
	if !s.baseUnknown {
		return nil
	}
	if s.snap != nil && s.snapIndex() >= s.base {
		s.applyCompact(s.snapIndex(), s.snap.GetMetadata().GetTerm())
		s.baseUnknown = false
		return nil
	}
	return fmt.Errorf("log starts at index %d with nothing recorded before it (a segment is missing)", s.base+1)
}
