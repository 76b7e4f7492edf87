package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestPowerLossBeforeEveryFileOperation cuts the power — only what was
// fsynced survives, plus a torn piece of what was not — just before the
// k-th file operation of a multi-group workload that rolls segments,
// rewrites groups forward, deletes segments, snapshots, compacts and
// removes a group, for every k. Each time, every group recovers to the
// state after some prefix of its operations that includes every
// operation acknowledged before the cut: nothing acknowledged is lost,
// nothing after a lost save appears, no group diverges from the oracle.
// The recovered log then takes new saves and recovers them too.
func TestPowerLossBeforeEveryFileOperation(t *testing.T) {
	for _, c := range []struct {
		groups, ops int
		seed        int64
	}{{4, 40, 0}, {6, 30, 100}, {3, 90, 200}} {
		t.Run(fmt.Sprintf("%d groups × %d ops, seed %d", c.groups, c.ops, c.seed), func(t *testing.T) {
			wls := workloadsSeeded(c.groups, c.ops, c.seed)
			for k := 1; ; k++ {
				if st, cut := powerLossAt(t, wls, k); !cut {
					t.Logf("power cut before each of %d file operations; uncut run: %+v", k-1, st)
					if k < 30 || st.Deleted == 0 || st.Rewritten == 0 {
						t.Fatalf("the workload made %d file operations, deleted %d segments and rewrote %d groups: too little to test",
							k-1, st.Deleted, st.Rewritten)
					}
					return
				}
			}
		})
	}
}

// powerLossAt runs the workload with the power cut before file operation
// k; it reports whether the cut happened (the workload had k operations)
// and, for an uncut run, the log's stats.
func powerLossAt(t *testing.T, wls []groupWorkload, k int) (Stats, bool) {
	t.Helper()
	m := vfs.NewCrashable()
	acked := make([]atomic.Int64, len(wls))
	var mu sync.Mutex
	ops := 0
	var cut *vfs.MemFS
	var ackedAtCut []int64
	f := vfs.NewFaulty(m, func(vfs.Op, string, int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		ops++
		if ops == k && cut == nil {
			// Completions run on the writer goroutine, which also makes
			// every file operation after Open: acked is exact here.
			ackedAtCut = make([]int64, len(wls))
			for i := range acked {
				ackedAtCut[i] = acked[i].Load()
			}
			cut = m.Crash(func(_ string, unsynced int) int { return k * 37 % (unsynced + 1) })
		}
		return 0, nil
	})
	opts := Options{SegmentSize: 1024, MaxSegments: 3}
	w := openWAL(t, f, opts)
	for _, err := range runAll(t, w, wls, acked, false) {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := w.Stats()
	_ = w.Close()
	mu.Lock()
	defer mu.Unlock()
	if cut == nil {
		return st, false
	}
	w2, err := Open(cut, "/wal", Options{SegmentSize: 1024, MaxSegments: 3, Logger: quiet})
	if err != nil {
		t.Fatalf("cut before op %d: recovery failed: %v", k, err)
	}
	want := map[uint64]string{}
	for i, wl := range wls {
		got := canonical(w2.Group(wl.id))
		if matchPrefix(wl, got, int(ackedAtCut[i])) < 0 {
			t.Fatalf("cut before op %d: group %d (%d operations acknowledged) recovered to a state no prefix of its operations from there has:\n%s\nthe log:\n%s",
				k, wl.id, ackedAtCut[i], got, dumpLog(cut, wl.id))
		}
		// One more save after the recovered log.
		g := w2.Group(wl.id)
		last, _ := g.LastIndex()
		term, _ := g.Term(last)
		e := ent(last+1, term+1)
		e.Data = []byte(fmt.Sprintf("after-%d", k))
		mustSave(t, g, hardState(term+1, 1, last), []*raftpb.Entry{e}, nil)
		want[wl.id] = canonical(g)
	}
	_ = w2.Close()
	w3, err := Open(cut.Crash(nil), "/wal", Options{SegmentSize: 1024, MaxSegments: 3, Logger: quiet})
	if err != nil {
		t.Fatalf("cut before op %d: second recovery failed: %v", k, err)
	}
	defer w3.Close()
	for id, s := range want {
		if got := canonical(w3.Group(id)); got != s {
			t.Fatalf("cut before op %d: group %d after the second restart:\n got %s\nwant %s", k, id, got, s)
		}
	}
	return st, true
}

// TestDiskErrorAtEveryFileOperation fails the k-th file operation of the
// workload (EIO; a failing write first writes part of its bytes), for
// every k. Every save from then on fails; after a power loss, with or
// without the unsynced bytes, every group recovers to a prefix of its
// operations that holds everything acknowledged.
func TestDiskErrorAtEveryFileOperation(t *testing.T) {
	wls := workloadsSeeded(4, 30, 300)
	seen := 0 // runs in which the error reached a group
	for k := 1; ; k++ {
		m := vfs.NewCrashable()
		acked := make([]atomic.Int64, len(wls))
		var mu sync.Mutex
		ops := 0
		failed := false
		f := vfs.NewFaulty(m, func(_ vfs.Op, _ string, n int) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			ops++
			if ops == k {
				failed = true
				return n / 2, vfs.ErrIO
			}
			return 0, nil
		})
		opts := Options{SegmentSize: 1024, MaxSegments: 3, Logger: quiet}
		w, err := Open(f, "/wal", opts)
		if err != nil {
			continue // the fault hit Open itself
		}
		errs := runAll(t, w, wls, acked, false)
		_ = w.Close()
		mu.Lock()
		hit := failed
		mu.Unlock()
		if !hit {
			t.Logf("a disk error at each of %d file operations, %d of them failing saves", k-1, seen)
			if seen < 20 {
				t.Fatalf("only %d runs failed a save", seen)
			}
			return
		}
		for _, err := range errs {
			if err != nil {
				seen++ // (a failed segment deletion is only logged)
				break
			}
		}
		for _, keep := range []int{0, 1 << 30} {
			w2, err := Open(m.Crash(func(string, int) int { return keep }), "/wal", opts)
			if err != nil {
				t.Fatalf("error at op %d: recovery: %v", k, err)
			}
			for i, wl := range wls {
				got := canonical(w2.Group(wl.id))
				if matchPrefix(wl, got, int(acked[i].Load())) < 0 {
					t.Fatalf("error at op %d: group %d (%d operations acknowledged) recovered to\n%s", k, wl.id, acked[i].Load(), got)
				}
			}
			_ = w2.Close()
		}
	}
}
