package wal

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/vfs"
)

// faults fails the file operations a test switches on.
type faults struct {
	mu        sync.Mutex
	failOp    vfs.Op
	failErr   error
	torn      int // bytes a failing write still writes
	armed     bool
	failPaths string
}

func (f *faults) set(op vfs.Op, err error, torn int) {
	f.mu.Lock()
	f.failOp, f.failErr, f.torn, f.armed = op, err, torn, true
	f.mu.Unlock()
}

func (f *faults) clear() {
	f.mu.Lock()
	f.armed = false
	f.mu.Unlock()
}

func (f *faults) inject(op vfs.Op, path string, _ int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.armed && op == f.failOp && strings.Contains(path, f.failPaths) {
		return f.torn, f.failErr
	}
	return 0, nil
}

// TestDiskErrorsAreNeverAcknowledged: a write that fails (ENOSPC, torn
// part-way), an fsync that fails (EIO) and a segment that cannot be
// created each fail the saves of their batch and every save after —
// nothing is acknowledged that a restart might not find — and a restart
// recovers exactly what was acknowledged before.
func TestDiskErrorsAreNeverAcknowledged(t *testing.T) {
	cases := []struct {
		name string
		op   vfs.Op
		err  error
		torn int
		seg  int64
	}{
		{"ENOSPC on write", vfs.OpWrite, vfs.ErrNoSpace, 0, 0},
		{"ENOSPC part-way through a write", vfs.OpWrite, vfs.ErrNoSpace, 30, 0},
		{"EIO on fsync", vfs.OpSync, vfs.ErrIO, 0, 0},
		{"ENOSPC creating a segment", vfs.OpCreate, vfs.ErrNoSpace, 0, 100},
		{"EIO syncing the directory", vfs.OpSyncDir, vfs.ErrIO, 0, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := vfs.NewMem()
			fl := &faults{}
			w := openWAL(t, vfs.NewFaulty(m, fl.inject), Options{SegmentSize: tc.seg})
			g1, g2 := w.Group(1), w.Group(2)
			mustSave(t, g1, hardState(1, 1, 0), ents(1, 3, 1), nil)
			mustSave(t, g2, hardState(1, 1, 0), ents(1, 3, 1), nil)
			want1, want2 := canonical(g1), canonical(g2)
			fl.set(tc.op, tc.err, tc.torn)
			err := save(t, g1, hardState(1, 1, 3), ents(4, 6, 1), nil)
			// The failed save may survive a restart (its bytes may have
			// reached the disk) or not, but nothing after it may.
			failed1 := canonical(g1)
			if !errors.Is(err, tc.err) {
				t.Fatalf("save during the fault: %v, want %v", err, tc.err)
			}
			fl.clear()
			// The log stays stopped: a later save is refused too, for any
			// group, however healthy the disk is again.
			if err := save(t, g2, hardState(1, 1, 3), ents(4, 4, 1), nil); !errors.Is(err, tc.err) {
				t.Fatalf("save after the fault: %v, want the sticky %v", err, tc.err)
			}
			if _, err := g2.CreateSnapshot(3, nil, []byte("x")); err == nil {
				t.Fatal("CreateSnapshot after the fault succeeded")
			}
			if !errors.Is(w.Err(), tc.err) {
				t.Fatalf("Err() = %v", w.Err())
			}
			_ = w.Close()
			// Power loss with none, and with all, of the unsynced bytes kept.
			for _, keep := range []int{0, 1 << 30} {
				w2 := openWAL(t, m.Crash(func(string, int) int { return keep }), Options{SegmentSize: tc.seg})
				if got := canonical(w2.Group(1)); got != want1 && got != failed1 {
					t.Fatalf("group 1 after restart:\n got %s\nwant %s\n  or %s", got, want1, failed1)
				}
				if got := canonical(w2.Group(2)); got != want2 {
					t.Fatalf("group 2 after restart:\n got %s\nwant %s", got, want2)
				}
				// And the restarted log works.
				mustSave(t, w2.Group(1), hardState(2, 1, 3), ents(4, 4, 2), nil)
				if last, _ := w2.Group(1).LastIndex(); last != 4 {
					t.Fatalf("last index %d after overwriting from 4, want 4", last)
				}
				_ = w2.Close()
			}
		})
	}
}

// TestClosedRefusesWork: after Close, saves fail with ErrClosed.
func TestClosedRefusesWork(t *testing.T) {
	w := openWAL(t, vfs.NewMem(), Options{})
	g := w.Group(1)
	mustSave(t, g, nil, ents(1, 1, 1), nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := save(t, g, nil, ents(2, 2, 1), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("save after Close: %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestSegmentDeletionFailureIsRetried: a segment that cannot be deleted
// stays (the saves do not notice) and goes at a later chance.
func TestSegmentDeletionFailureIsRetried(t *testing.T) {
	m := vfs.NewMem()
	fl := &faults{}
	w := openWAL(t, vfs.NewFaulty(m, fl.inject), Options{SegmentSize: 256, MaxSegments: 1000})
	g := w.Group(1)
	for i := uint64(1); i <= 20; i++ {
		mustSave(t, g, hardState(1, 1, i-1), ents(i, i, 1), nil)
	}
	before := len(segFiles(t, m))
	fl.set(vfs.OpRemove, vfs.ErrIO, 0)
	if _, err := g.CreateSnapshot(20, nil, []byte("s")); err != nil {
		t.Fatal(err)
	}
	if err := g.Compact(20); err != nil {
		t.Fatal(err)
	}
	mustSave(t, g, hardState(1, 1, 20), nil, nil)
	barrier(t, w)
	if n := len(segFiles(t, m)); n < before {
		t.Fatalf("%d segments while deletion fails, want at least %d", n, before)
	}
	fl.clear()
	if _, err := g.CreateSnapshot(21, nil, []byte("s")); err == nil {
		t.Fatal("snapshot past the last index succeeded")
	}
	mustSave(t, g, hardState(1, 1, 20), ents(21, 21, 1), nil)
	if _, err := g.CreateSnapshot(21, nil, []byte("s2")); err != nil {
		t.Fatal(err)
	}
	barrier(t, w)
	if n := len(segFiles(t, m)); n > 2 {
		t.Fatalf("%d segments after deletion works again", n)
	}
	if w.Err() != nil {
		t.Fatalf("a failed deletion stopped the log: %v", w.Err())
	}
	_ = w.Close()
}

// TestCompletionMayCallTheStorage: a completion runs without the group's
// lock, whether the save was refused, failed after Close, or succeeded.
func TestCompletionMayCallTheStorage(t *testing.T) {
	w := openWAL(t, vfs.NewMem(), Options{})
	g := w.Group(1)
	call := func(es []*raftpb.Entry) error {
		ch := make(chan error, 1)
		g.Save(nil, es, nil, func(err error) {
			_, _ = g.LastIndex() // would deadlock under the lock
			ch <- err
		})
		select {
		case err := <-ch:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("completion never ran (deadlock?)")
			return nil
		}
	}
	if err := call(ents(1, 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := call(ents(5, 5, 1)); err == nil {
		t.Fatal("a gap was accepted")
	}
	_ = w.Close()
	if err := call(ents(2, 2, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if last, _ := g.LastIndex(); last != 1 {
		t.Fatalf("a save refused after Close changed the log: last %d", last)
	}
}
