package store

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// Group commit with waiters: while one write and its fdatasync are in
// flight, a waiter whose record it carries returns with it (without taking
// the log's lock again), one whose record came later is carried by the
// next write, and a failed write fails every waiter it carried.
func TestDefinitionsLogWaitersOfAWriteInFlight(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	var hold, fail atomic.Bool
	held, release := make(chan struct{}, 1), make(chan struct{})
	fsys := vfs.NewFaulty(m, func(op vfs.Op, path string, _ int) (int, error) {
		if op == vfs.OpSync && strings.Contains(path, logPrefix) && hold.CompareAndSwap(true, false) {
			held <- struct{}{}
			<-release
			if fail.Load() {
				return 0, vfs.ErrIO
			}
		}
		return 0, nil
	})
	st, err := Open(fsys, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := testCommands()
	syncing := func(seq uint64) chan error {
		ch := make(chan error, 1)
		go func() { ch <- st.SyncCommands(seq) }()
		return ch
	}
	// wait gives a waiter started just now time to reach its wait: the
	// results below hold whenever it gets there, the test is only
	// weaker if it is late.
	wait := func() { time.Sleep(20 * time.Millisecond) }

	s1, err := st.AppendCommand(cmds[0])
	if err != nil {
		t.Fatal(err)
	}
	s2 := appendAll(t, st, cmds[1:2])
	hold.Store(true)
	writer := syncing(s1) // writes records 1 and 2, held in its fdatasync
	<-held
	carried := syncing(s2)
	s3 := appendAll(t, st, cmds[2:3])
	later := syncing(s3)
	wait()
	close(release)
	for name, ch := range map[string]chan error{"writer": writer, "carried": carried, "later": later} {
		select {
		case err := <-ch:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return", name)
		}
	}

	// A failed write fails the waiters it carried.
	release = make(chan struct{})
	fail.Store(true)
	hold.Store(true)
	s4 := appendAll(t, st, cmds[3:4])
	s5 := appendAll(t, st, cmds[4:5])
	writer = syncing(s4)
	<-held
	carried = syncing(s5)
	wait()
	close(release)
	for name, ch := range map[string]chan error{"writer": writer, "carried": carried} {
		select {
		case err := <-ch:
			if !errors.Is(err, vfs.ErrIO) {
				t.Errorf("%s after a failed fdatasync: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return", name)
		}
	}
	st2, err := Open(m.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds[:3]) {
		t.Fatalf("after a crash: %d commands, want the 3 synced", len(got))
	}
}
