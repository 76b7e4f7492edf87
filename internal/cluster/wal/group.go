package wal

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ErrRemoved is returned by a group's storage after Remove.
var ErrRemoved = errors.New("wal: group removed")

// GroupStorage is one Raft group's storage in the node's WAL. It
// implements raftnode.Storage. Its methods are safe for concurrent use;
// the raft.Storage reads are served from memory.
type GroupStorage struct {
	w  *WAL
	id uint64

	mu      sync.Mutex
	st      logState
	removed bool
	pins    pins // written by the WAL's writer, under mu
	// recorded: a record of the group was made (or recovered), so the
	// group counts in Groups.
	recorded bool
}

// ID returns the group's id.
func (g *GroupStorage) ID() uint64 { return g.id }

// InitialState implements raft.Storage.
func (g *GroupStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, nil, ErrRemoved
	}
	var hs *raftpb.HardState
	if g.st.hs != nil {
		hs = proto.Clone(g.st.hs).(*raftpb.HardState)
	}
	cs := &raftpb.ConfState{}
	if c := g.st.snap.GetMetadata().GetConfState(); c != nil {
		cs = proto.Clone(c).(*raftpb.ConfState)
	}
	return hs, raftpb.EnsureConfState(cs), nil
}

// Entries implements raft.Storage.
func (g *GroupStorage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	if lo <= g.st.base {
		return nil, raft.ErrCompacted
	}
	if hi > g.st.lastIndex()+1 || lo > hi {
		return nil, fmt.Errorf("wal: group %d: entries [%d, %d) out of bounds, last index %d: %w",
			g.id, lo, hi, g.st.lastIndex(), raft.ErrUnavailable)
	}
	if lo == hi {
		return nil, nil
	}
	ents := g.st.ents[lo-g.st.base-1 : hi-g.st.base-1]
	size := uint64(proto.Size(ents[0]))
	n := 1
	for ; n < len(ents); n++ {
		size += uint64(proto.Size(ents[n]))
		if size > maxSize {
			break
		}
	}
	// A copy: the caller may append to it.
	return append([]*raftpb.Entry(nil), ents[:n]...), nil
}

// Term implements raft.Storage.
func (g *GroupStorage) Term(i uint64) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return 0, ErrRemoved
	}
	return g.st.term(i)
}

// LastIndex implements raft.Storage.
func (g *GroupStorage) LastIndex() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return 0, ErrRemoved
	}
	return g.st.lastIndex(), nil
}

// FirstIndex implements raft.Storage.
func (g *GroupStorage) FirstIndex() (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return 0, ErrRemoved
	}
	return g.st.base + 1, nil
}

// Snapshot implements raft.Storage: the last snapshot, or an empty one.
func (g *GroupStorage) Snapshot() (*raftpb.Snapshot, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	if g.st.snap == nil {
		return raftpb.EnsureSnapshot(nil), nil
	}
	return proto.Clone(g.st.snap).(*raftpb.Snapshot), nil
}

// Save persists a Ready's hard state, entries and snapshot (each may be
// empty) as one record, so they survive a crash together or not at all.
// They are visible to the raft.Storage methods when Save returns; done is
// called on the WAL's writer goroutine once an fsync covers them, or with
// the error that stopped them. done must not block, nor wait on the WAL
// (CreateSnapshot, Remove would deadlock): it holds up every group's
// completions behind it. Saves of one group complete in order. A refused
// save (a gap, an old snapshot, a removed group, a closed WAL) calls done
// with the error before Save returns, never under the group's lock.
//
// A snapshot replaces the log (it came from the leader); entries
// overlapping the log replace its conflicting suffix.
func (g *GroupStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if hs != nil && raft.IsEmptyHardState(hs) {
		hs = nil
	}
	if snap != nil && raft.IsEmptySnap(snap) {
		snap = nil
	}
	// done never runs under g.mu: it may call back into the storage.
	if err := g.save(hs, ents, snap, done); err != nil {
		done(err)
	}
}

// save does Save's work under g.mu; an error means done was not queued.
func (g *GroupStorage) save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return ErrRemoved
	}
	if err := g.checkSave(ents, snap); err != nil {
		return err
	}
	if hs == nil && len(ents) == 0 && snap == nil {
		// Nothing to write, but the completion keeps its place in order.
		if !g.w.enqueue(pending{g: g, done: done}) {
			return ErrClosed
		}
		return nil
	}
	if hs != nil {
		hs = proto.Clone(hs).(*raftpb.HardState)
	}
	r := &record{typ: recSave, group: g.id, hs: hs, snap: snap, ents: ents}
	// Room for the entries' protobuf framing beyond sizeEstimate's, so the
	// pooled buffer need not grow.
	var buf []byte
	var parts [][]byte
	var err error
	if splitSave(r) { // large entries written from their own memory (saveparts.go)
		buf, parts, err = encodeSaveParts(getRecBuf(recordRoom+64+48*len(ents)+int(r.sizeEstimate())-int(dataBytes(ents))), r)
	} else {
		buf, err = encodeQueued(getRecBuf(recordRoom+int(r.sizeEstimate())+16*len(ents)+64), r)
	}
	if err != nil {
		return err
	}
	// Queued first, applied second, both under g.mu: the writer cannot
	// complete the save before it is applied, as it takes g.mu to account
	// for the record before calling done.
	if !g.w.enqueue(pending{g: g, rec: buf, parts: parts, meta: metaOf(r), done: done}) {
		return ErrClosed
	}
	_ = g.st.applySave(hs, ents, snap, false) // checkSave made sure it applies
	g.recorded = true
	return nil
}

// checkSave refuses what would corrupt the log: a snapshot older than the
// one held, entries that are not consecutive or leave a gap.
func (g *GroupStorage) checkSave(ents []*raftpb.Entry, snap *raftpb.Snapshot) error {
	last := g.st.lastIndex()
	if snap != nil {
		if si := snap.GetMetadata().GetIndex(); g.st.snap != nil && si <= g.st.snapIndex() {
			return fmt.Errorf("wal: group %d: snapshot at %d is not newer than the one at %d: %w",
				g.id, si, g.st.snapIndex(), raft.ErrSnapOutOfDate)
		}
		last = snap.GetMetadata().GetIndex()
	}
	if len(ents) > 0 && ents[0].GetIndex() == 0 {
		return fmt.Errorf("wal: group %d: entry index 0", g.id)
	}
	for i := 1; i < len(ents); i++ {
		if ents[i].GetIndex() != ents[i-1].GetIndex()+1 {
			return fmt.Errorf("wal: group %d: entries not consecutive at index %d", g.id, ents[i-1].GetIndex())
		}
	}
	if len(ents) > 0 && ents[0].GetIndex() > last+1 {
		return fmt.Errorf("wal: group %d: %w: appending at %d, last index %d", g.id, errGap, ents[0].GetIndex(), last)
	}
	return nil
}

// CreateSnapshot records the state machine's snapshot as of index (with
// the configuration cs; nil keeps the last snapshot's) and returns once it
// is durable. The log is not compacted: call Compact.
//
// The storage keeps data, which the caller must not change afterwards,
// and the snapshot returned shares it (read-only): a snapshot is the whole
// state machine, megabytes for a queue with a backlog, and it is recorded
// on the group's goroutine, so every copy of it stalls the group (two
// copies, of four, are gone: BenchmarkCreateSnapshot).
func (g *GroupStorage) CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	g.mu.Lock()
	if g.removed {
		g.mu.Unlock()
		return nil, ErrRemoved
	}
	if g.st.snap != nil && index <= g.st.snapIndex() {
		g.mu.Unlock()
		return nil, raft.ErrSnapOutOfDate
	}
	if index > g.st.lastIndex() {
		g.mu.Unlock()
		return nil, fmt.Errorf("wal: group %d: snapshot at %d beyond the last index %d", g.id, index, g.st.lastIndex())
	}
	term, err := g.st.term(index)
	if err != nil {
		g.mu.Unlock()
		return nil, err
	}
	if cs == nil {
		cs = g.st.snap.GetMetadata().GetConfState()
	}
	snap := raftpb.EnsureSnapshot(&raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(index), Term: proto.Uint64(term),
			ConfState: raftpb.EnsureConfState(cloneCS(cs)),
		},
	})
	r := &record{typ: recSnapshot, group: g.id, snap: snap}
	ch := make(chan error, 1)
	p := pending{g: g, meta: metaOf(r), done: func(err error) { ch <- err }}
	if len(data) >= splitSnapshotFrom {
		var data, tail []byte
		p.rec, data, tail, err = encodeSnapshotParts(nil, g.id, snap)
		p.parts = [][]byte{data, tail}
	} else {
		p.rec, err = encodeQueued(nil, r)
	}
	if err != nil {
		g.mu.Unlock()
		return nil, err
	}
	if !g.w.enqueue(p) {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	g.st.snap = snap
	g.recorded = true
	g.mu.Unlock()
	if err := <-ch; err != nil {
		return nil, err
	}
	return &raftpb.Snapshot{Data: snap.Data, Metadata: proto.Clone(snap.GetMetadata()).(*raftpb.SnapshotMetadata)}, nil
}

func cloneCS(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return nil
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}

// Compact drops the entries up to index, which must not pass the last
// snapshot (what a restart would need to replay). The record of it is
// written with the next batch; Compact does not wait for it, as losing it
// in a crash only brings back entries the snapshot already covers.
func (g *GroupStorage) Compact(index uint64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return ErrRemoved
	}
	if index <= g.st.base {
		return raft.ErrCompacted
	}
	if index > g.st.lastIndex() {
		return fmt.Errorf("wal: group %d: compact %d beyond the last index %d", g.id, index, g.st.lastIndex())
	}
	if index > g.st.snapIndex() {
		return fmt.Errorf("wal: group %d: compact %d beyond the snapshot at %d", g.id, index, g.st.snapIndex())
	}
	term, err := g.st.term(index)
	if err != nil {
		return err
	}
	r := &record{typ: recCompact, group: g.id, index: index, term: term}
	buf, err := encodeQueued(nil, r)
	if err != nil {
		return err
	}
	if !g.w.enqueue(pending{g: g, rec: buf, meta: metaOf(r)}) {
		return ErrClosed
	}
	g.st.applyCompact(index, term)
	return nil
}

// Remove deletes the group's state for good and returns once that is
// durable: a restart does not bring the group back. The storage refuses
// every call afterwards; WAL.Group(id) makes a new, empty one.
func (g *GroupStorage) Remove() error {
	g.mu.Lock()
	if g.removed {
		g.mu.Unlock()
		return nil
	}
	r := &record{typ: recRemove, group: g.id}
	buf, _ := encodeQueued(nil, r) // cannot fail
	ch := make(chan error, 1)
	// forget before the record can be written, so the writer's retiring
	// bookkeeping sees the group there.
	g.w.forget(g)
	if !g.w.enqueue(pending{g: g, rec: buf, meta: metaOf(r), done: func(err error) { ch <- err }}) {
		g.mu.Unlock()
		return ErrClosed
	}
	g.removed = true
	g.st = logState{}
	g.mu.Unlock()
	return <-ch
}

// checkpoint encodes the group's whole state (called by the writer, with
// g.mu held), or returns nil for a group with nothing to keep.
func (g *GroupStorage) checkpoint() *record {
	if g.removed || !g.recorded {
		return nil
	}
	return &record{typ: recCheckpoint, group: g.id, hs: g.st.hs, snap: g.st.snap,
		index: g.st.base, term: g.st.baseTerm, ents: g.st.ents}
}
