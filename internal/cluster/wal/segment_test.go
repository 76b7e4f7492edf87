package wal

import (
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/vfs"
)

func segFiles(t *testing.T, fsys vfs.FS) []string {
	t.Helper()
	names, err := fsys.List("/wal")
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSegmentsDeletedOnceCompacted: segments stay while any group needs
// their entries and go once every group has snapshotted and compacted
// past them; a restart finds the same state.
func TestSegmentsDeletedOnceCompacted(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentSize: 1024, MaxSegments: 1000} // no rewriting: deletion by compaction alone
	w := openWAL(t, m, opts)
	gs := []*GroupStorage{w.Group(1), w.Group(2), w.Group(3)}
	for i := uint64(1); i <= 60; i++ {
		for _, g := range gs {
			mustSave(t, g, hardState(1, 1, i-1), ents(i, i, 1), nil)
		}
	}
	before := len(segFiles(t, m))
	if before < 5 {
		t.Fatalf("only %d segments: the test needs rollovers", before)
	}
	// Two groups compact: the third still needs the early segments.
	for _, g := range gs[:2] {
		if _, err := g.CreateSnapshot(55, nil, []byte("s")); err != nil {
			t.Fatal(err)
		}
		if err := g.Compact(55); err != nil {
			t.Fatal(err)
		}
	}
	mustSave(t, gs[0], hardState(1, 1, 60), nil, nil) // a batch after the compactions
	barrier(t, w)
	if n := len(segFiles(t, m)); n != before {
		t.Fatalf("%d segments after two of three groups compacted, want all %d kept", n, before)
	}
	if _, err := gs[2].CreateSnapshot(58, nil, []byte("s3")); err != nil {
		t.Fatal(err)
	}
	if err := gs[2].Compact(58); err != nil {
		t.Fatal(err)
	}
	mustSave(t, gs[0], hardState(1, 1, 60), nil, nil)
	barrier(t, w)
	after := len(segFiles(t, m))
	if after > 2 {
		t.Fatalf("%d segments left of %d after every group compacted", after, before)
	}
	if w.Stats().Deleted != uint64(before-after) {
		t.Fatalf("Stats.Deleted = %d, want %d", w.Stats().Deleted, before-after)
	}
	want := []string{canonical(gs[0]), canonical(gs[1]), canonical(gs[2])}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), opts)
	defer w2.Close()
	for i, id := range []uint64{1, 2, 3} {
		if got := canonical(w2.Group(id)); got != want[i] {
			t.Fatalf("group %d after restart:\n got %s\nwant %s", id, got, want[i])
		}
	}
}

// TestIdleGroupRewrittenForward: a group that saved once and went quiet
// does not pin its segment forever — when the log passes MaxSegments it
// is rewritten forward, the old segments go, and it recovers intact.
func TestIdleGroupRewrittenForward(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentSize: 1024, MaxSegments: 3}
	w := openWAL(t, m, opts)
	idle, busy := w.Group(1), w.Group(2)
	mustSave(t, idle, hardState(3, 2, 2), ents(1, 2, 3), nil)
	if _, err := idle.CreateSnapshot(1, nil, []byte("idle-state")); err != nil {
		t.Fatal(err)
	}
	wantIdle := canonical(idle)
	for i := uint64(1); i <= 300; i++ {
		mustSave(t, busy, hardState(1, 1, i-1), ents(i, i, 1), nil)
		if i%20 == 0 {
			if _, err := busy.CreateSnapshot(i-5, nil, []byte("busy")); err != nil {
				t.Fatal(err)
			}
			if err := busy.Compact(i - 5); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(segFiles(t, m)); n > opts.MaxSegments+2 {
			t.Fatalf("after save %d: %d segments, the log is not bounded", i, n)
		}
	}
	if w.Stats().Rewritten == 0 || w.Stats().Deleted == 0 {
		t.Fatalf("stats %+v: want groups rewritten and segments deleted", w.Stats())
	}
	wantBusy := canonical(busy)
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), opts)
	defer w2.Close()
	if got := canonical(w2.Group(1)); got != wantIdle {
		t.Fatalf("idle group after restart:\n got %s\nwant %s", got, wantIdle)
	}
	if got := canonical(w2.Group(2)); got != wantBusy {
		t.Fatalf("busy group after restart:\n got %s\nwant %s", got, wantBusy)
	}
}

// TestOldHardStatePinsItsSegment: a group whose last hard state is older
// than everything else it keeps (its entries snapshotted and compacted
// since) keeps that hard state's segment, without rewriting.
func TestOldHardStatePinsItsSegment(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentSize: 512, MaxSegments: 1000}
	w := openWAL(t, m, opts)
	g, other := w.Group(1), w.Group(2)
	mustSave(t, g, hardState(7, 3, 1), ents(1, 2, 7), nil)
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, other, nil, ents(i, i, 1), nil)
	}
	mustSave(t, g, nil, ents(3, 4, 7), nil) // no hard state
	if _, err := g.CreateSnapshot(4, nil, []byte("g")); err != nil {
		t.Fatal(err)
	}
	if err := g.Compact(4); err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateSnapshot(20, nil, []byte("o")); err != nil {
		t.Fatal(err)
	}
	if err := other.Compact(20); err != nil {
		t.Fatal(err)
	}
	mustSave(t, other, nil, ents(21, 21, 1), nil)
	want := canonical(g)
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), opts)
	defer w2.Close()
	if got := canonical(w2.Group(1)); got != want {
		t.Fatalf("after restart:\n got %s\nwant %s", got, want)
	}
}

// TestLargeGroupIsNotRewritten: a group whose live log is large is not
// copied forward at every rollover (that would rewrite it again and again
// while it does not compact); its segments stay until it compacts.
func TestLargeGroupIsNotRewritten(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentSize: 4096, MaxSegments: 2}
	w := openWAL(t, m, opts)
	g := w.Group(1)
	var rewrites uint64
	for i := uint64(1); i <= 100; i++ {
		e := ent(i, 1)
		e.Data = make([]byte, 1024)
		mustSave(t, g, hardState(1, 1, i-1), []*raftpb.Entry{e}, nil)
		barrier(t, w)
		if i == 70 { // past 64 KiB live: no more rewriting from here
			rewrites = w.Stats().Rewritten
		}
	}
	if st := w.Stats(); st.Rewritten != rewrites || st.Segments <= opts.MaxSegments+2 {
		t.Fatalf("stats %+v: a group over 64 KiB was rewritten %d more times; want none, and the segments kept", st, st.Rewritten-rewrites)
	}
	if _, err := g.CreateSnapshot(100, nil, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := g.Compact(100); err != nil {
		t.Fatal(err)
	}
	mustSave(t, g, hardState(1, 1, 100), nil, nil)
	barrier(t, w)
	if n := len(segFiles(t, m)); n > 2 {
		t.Fatalf("%d segments after the group compacted everything", n)
	}
	_ = w.Close()
}

// TestRemovedGroupPinsUntilItsRemovalIsDurable: a group being removed
// keeps its segments until the remove record is written; deleting them
// earlier would lose the group's state if the power failed before the
// removal reached the disk (the crash test found this).
func TestRemovedGroupPinsUntilItsRemovalIsDurable(t *testing.T) {
	m := vfs.NewCrashable()
	var (
		mu      sync.Mutex
		hold    chan struct{} // an fsync waits on it while set
		held    = make(chan struct{}, 1)
		cutNext bool
		cut     *vfs.MemFS
	)
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		mu.Lock()
		h := hold
		if cutNext && cut == nil && op == vfs.OpWrite {
			cut = m.Crash(nil)
		}
		mu.Unlock()
		if op == vfs.OpSync && h != nil {
			held <- struct{}{}
			<-h
		}
		return 0, nil
	})
	w := openWAL(t, f, Options{SegmentSize: 256, MaxSegments: 1000})
	a, b := w.Group(1), w.Group(2)
	mustSave(t, a, hardState(1, 1, 0), ents(1, 3, 1), nil)
	want := canonical(a)
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, b, hardState(1, 1, i-1), ents(i, i, 1), nil)
	}
	if _, err := b.CreateSnapshot(20, nil, []byte("b")); err != nil {
		t.Fatal(err)
	}
	// Batch N: b's compaction, which lets the writer delete segments;
	// its fsync is held while a's removal queues behind it.
	release := make(chan struct{})
	mu.Lock()
	hold = release
	mu.Unlock()
	if err := b.Compact(20); err != nil {
		t.Fatal(err)
	}
	<-held
	mu.Lock()
	hold = nil
	mu.Unlock()
	removed := make(chan error, 1)
	go func() { removed <- a.Remove() }()
	for i := 0; ; i++ {
		w.mu.Lock()
		n := len(w.queue)
		w.mu.Unlock()
		if n > 0 {
			break
		}
		if i > 10000 {
			t.Fatal("the removal never queued")
		}
		time.Sleep(100 * time.Microsecond)
	}
	// Power fails at the next write after batch N (and the segment
	// deletions that follow it): the removal is not on disk.
	mu.Lock()
	cutNext = true
	mu.Unlock()
	close(release)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	mu.Lock()
	defer mu.Unlock()
	w2, err := Open(cut, "/wal", Options{SegmentSize: 256, MaxSegments: 1000, Logger: quiet})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	defer w2.Close()
	if got := canonical(w2.Group(1)); got != want {
		t.Fatalf("group 1, whose removal never reached the disk:\n got %s\nwant %s", got, want)
	}
}
