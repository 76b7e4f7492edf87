package wal

import (
	"sync/atomic"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestWorkloadMatchesMemoryStorage plays random workloads (appends,
// overlapping appends, snapshots, compactions, leader snapshots, a
// removal) on several groups at once, with small segments so the log
// rolls, rewrites groups forward and deletes segments; after every
// operation the group shows what etcd's MemoryStorage shows, and after a
// clean restart every group is exactly where it ended.
func TestWorkloadMatchesMemoryStorage(t *testing.T) {
	m := vfs.NewMem()
	opts := Options{SegmentSize: 2048, MaxSegments: 3}
	w := openWAL(t, m, opts)
	wls := workloads(6, 120)
	acked := make([]atomic.Int64, len(wls))
	for _, err := range runAll(t, w, wls, acked, true) {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := w.Stats()
	t.Logf("stats: %+v", st)
	if st.Deleted == 0 || st.Rewritten == 0 {
		t.Fatalf("the workload deleted %d segments and rewrote %d groups: want both", st.Deleted, st.Rewritten)
	}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), opts)
	defer w2.Close()
	for _, wl := range wls {
		if got, want := canonical(w2.Group(wl.id)), wl.states[len(wl.states)-1]; got != want {
			t.Fatalf("group %d after restart:\n got %s\nwant %s", wl.id, got, want)
		}
	}
}
