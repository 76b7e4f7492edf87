package wal

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestGroupCommitAcrossGroups: many groups saving concurrently, each
// waiting for its own completion, share fsyncs — far fewer fsyncs than
// saves — and every save is durable when its completion runs.
func TestGroupCommitAcrossGroups(t *testing.T) {
	m := vfs.NewMem()
	// Each fsync takes a moment, as a disk's does, so saves gather behind it.
	var syncs atomic.Int64
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		if op == vfs.OpSync {
			syncs.Add(1)
			time.Sleep(500 * time.Microsecond)
		}
		return 0, nil
	})
	var onSyncEntries, onSyncCalls atomic.Int64
	w := openWAL(t, f, Options{OnSync: func(n int, _ time.Duration) {
		onSyncEntries.Add(int64(n))
		onSyncCalls.Add(1)
	}})
	const groups, saves = 50, 20
	before := syncs.Load()
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for gid := uint64(1); gid <= groups; gid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := w.Group(gid)
			for i := uint64(1); i <= saves; i++ {
				if err := save(t, g, hardState(1, 1, i-1), ents(i, i, 1), nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := syncs.Load() - before
	total := int64(groups * saves)
	t.Logf("%d saves, %d fsyncs: %.1f saves per fsync", total, n, float64(total)/float64(n))
	if n >= total/4 {
		t.Fatalf("%d fsyncs for %d saves: no group commit", n, total)
	}
	st := w.Stats()
	if st.Entries != uint64(total) || int64(st.Fsyncs) != n || onSyncEntries.Load() != total || onSyncCalls.Load() != n {
		t.Fatalf("stats %+v, OnSync %d entries in %d calls; want %d entries in %d fsyncs", st, onSyncEntries.Load(), onSyncCalls.Load(), total, n)
	}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	for gid := uint64(1); gid <= groups; gid++ {
		if last, _ := w2.Group(gid).LastIndex(); last != saves {
			t.Fatalf("group %d recovered up to %d, want %d", gid, last, saves)
		}
	}
}

// TestCompletionsOfAGroupInOrder: pipelined saves of one group complete
// in the order they were made, and each is visible before it completes.
func TestCompletionsOfAGroupInOrder(t *testing.T) {
	w := openWAL(t, vfs.NewMem(), Options{})
	defer w.Close()
	g := w.Group(1)
	var mu sync.Mutex
	var order []uint64
	done := make(chan struct{})
	const n = 200
	for i := uint64(1); i <= n; i++ {
		g.Save(hardState(1, 1, i), ents(i, i, 1), nil, func(err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			if len(order) == n {
				close(done)
			}
			mu.Unlock()
		})
		if last, _ := g.LastIndex(); last != i {
			t.Fatalf("entry %d not visible after Save returned (last %d)", i, last)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("saves never completed")
	}
	for i, v := range order {
		if v != uint64(i+1) {
			t.Fatalf("completion %d was save %d: out of order", i, v)
		}
	}
}

// TestThousandGroupsOneLog: a thousand groups write one file and share
// fsyncs, and all of them come back after a restart.
func TestThousandGroupsOneLog(t *testing.T) {
	m := vfs.NewMem()
	var syncs atomic.Int64
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		if op == vfs.OpSync {
			syncs.Add(1)
			time.Sleep(200 * time.Microsecond) // a disk's fsync takes a while
		}
		return 0, nil
	})
	w := openWAL(t, f, Options{})
	const groups, saves = 1000, 3
	var wg sync.WaitGroup
	for gid := uint64(1); gid <= groups; gid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := w.Group(gid)
			for i := uint64(1); i <= saves; i++ {
				if err := save(t, g, hardState(1, 1, i-1), ents(i, i, 1), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n > groups*saves/10 {
		t.Fatalf("%d fsyncs for %d saves", n, groups*saves)
	}
	if names := segFiles(t, m); len(names) != 1 {
		t.Fatalf("files %v, want one segment", names)
	}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	if got := w2.Groups(); len(got) != groups {
		t.Fatalf("%d groups recovered, want %d", len(got), groups)
	}
	for _, id := range []uint64{1, 500, 1000} {
		if last, _ := w2.Group(id).LastIndex(); last != saves {
			t.Fatalf("group %d recovered to %d, want %d", id, last, saves)
		}
	}
}

// TestLargeBatchesAreSplit: what is queued beyond the batch limit goes in
// the next batch, in order, and every batch recovers.
func TestLargeBatchesAreSplit(t *testing.T) {
	m := vfs.NewMem()
	// The first fsync waits until every save is queued, so without the
	// limit they would all go in the second batch.
	held, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		if op == vfs.OpSync {
			first.Do(func() { close(held); <-release })
		}
		return 0, nil
	})
	w := openWAL(t, f, Options{})
	w.maxBatch = 300 // a few records per batch
	g := w.Group(1)
	var mu sync.Mutex
	var order []uint64
	done := make(chan struct{})
	const n = 50
	for i := uint64(1); i <= n; i++ {
		g.Save(hardState(1, 1, i-1), ents(i, i, 1), nil, func(err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			if len(order) == n {
				close(done)
			}
			mu.Unlock()
		})
		if i == 1 {
			<-held
		}
	}
	close(release)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("saves never completed")
	}
	for i, v := range order {
		if v != uint64(i+1) {
			t.Fatalf("completion %d was save %d", i, v)
		}
	}
	if st := w.Stats(); st.Fsyncs < 5 { // 2 without the limit: the first save, then the rest
		t.Fatalf("%d fsyncs for %d saves with room for a few per batch: batches not split", st.Fsyncs, n)
	}
	want := canonical(g)
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	if got := canonical(w2.Group(1)); got != want {
		t.Fatalf("after restart:\n got %s\nwant %s", got, want)
	}
}
