package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// A power cut while a sync of the preallocated definitions log is in
// flight leaves any pattern of that write's sectors on disk, zeros where
// they were lost. Recovery must neither refuse to start nor lose a synced
// command, and may keep only a prefix of the unsynced ones: every trial
// syncs commands one by one and in groups (some larger than the torn-write
// window, some crossing a preallocated chunk), then cuts the power during
// the k-th sync of a last group.
func TestDefinitionsLogPowerCutDuringASyncKeepsTheSyncedPrefix(t *testing.T) {
	t.Parallel()
	trials := 120
	if testing.Short() {
		trials = 30
	}
	for trial := range trials {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		m := vfs.NewCrashable()
		var failing atomic.Bool
		var syncs atomic.Int32
		failAt := int32(rng.IntN(3)) // which sync of the last group the power cut hits
		fsys := vfs.NewFaulty(m, func(op vfs.Op, path string, _ int) (int, error) {
			if op == vfs.OpSync && failing.Load() && strings.Contains(path, logPrefix) && syncs.Add(1) > failAt {
				return 0, vfs.ErrIO // the write reached the page cache, the sync never finished
			}
			return 0, nil
		})
		st, err := Open(fsys, "/d", Options{})
		if err != nil {
			t.Fatal(err)
		}
		command := func(i int) []byte {
			size := 20 + rng.IntN(300)
			if rng.IntN(40) == 0 {
				size = tornWindow + rng.IntN(2*tornWindow) // written in pieces
			}
			return append(fmt.Appendf(nil, "cmd %d %d ", trial, i), bytes.Repeat([]byte{byte('a' + i%26)}, size)...)
		}
		var all [][]byte
		for group := rng.IntN(40); group > 0; group-- {
			var g [][]byte
			for range 1 + rng.IntN(3)*rng.IntN(30) {
				g = append(g, command(len(all)+len(g)))
			}
			if err := st.SyncCommands(appendAll(t, st, g)); err != nil {
				t.Fatal(err)
			}
			all = append(all, g...)
		}
		synced := len(all)
		var last [][]byte
		for range 1 + rng.IntN(60) {
			last = append(last, command(len(all)+len(last)))
		}
		failing.Store(true)
		if err := st.SyncCommands(appendAll(t, st, last)); err == nil {
			synced += len(last) // fewer pieces than failAt: the cut came after
		}
		all = append(all, last...)

		keep := rng.Float64()
		after := m.CrashSectors(func(string, int) bool { return rng.Float64() < keep })
		st2, err := Open(after, "/d", Options{})
		if err != nil {
			t.Fatalf("trial %d: recovery after a power cut refused: %v", trial, err)
		}
		got := st2.LoadCommands()
		if len(got) < synced || !sameCommands(got, all[:len(got)]) {
			t.Fatalf("trial %d: recovered %d commands, want the %d synced and then a prefix of the %d unsynced", trial, len(got), synced, len(last))
		}
		// The recovered log is cut where it ended and the next one goes on.
		more := command(len(got))
		if err := st2.SyncCommands(appendAll(t, st2, [][]byte{more})); err != nil {
			t.Fatal(err)
		}
		_ = st2.Close()
		st3, err := Open(after.CrashSectors(func(string, int) bool { return false }), "/d", Options{})
		if err != nil {
			t.Fatalf("trial %d: second recovery: %v", trial, err)
		}
		if got3 := st3.LoadCommands(); !sameCommands(got3, append(append([][]byte(nil), all[:len(got)]...), more)) {
			t.Fatalf("trial %d: after the second start got %d commands", trial, len(got3))
		}
		_ = st3.Close()
		_ = st.Close()
	}
}

// On the operating system's file system: the log is preallocated (the
// file is larger than its records, zeros after them), grows by chunks as
// records pass the zeros, and reads back whole at the next start, which
// cuts the zeros from the log it read.
func TestDefinitionsLogIsPreallocatedOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := Open(vfs.Default, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := manyCommands(2 * minPrealloc / 200) // past the first chunk
	name := logName(st.defs.dir, st.defs.gen)
	for i, c := range cmds {
		if err := st.SyncCommands(appendAll(t, st, [][]byte{c})); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			raw, _ := vfs.ReadFile(vfs.Default, name)
			if end := int(st.defs.end); len(raw) != end+minPrealloc || !bytes.Equal(raw[end:], make([]byte, minPrealloc)) {
				t.Fatalf("after one record the log holds %d bytes, want %d of it and %d zeros", len(raw), end, minPrealloc)
			}
		}
	}
	if st.defs.alloc <= 2*minPrealloc || st.defs.end >= st.defs.alloc {
		t.Fatalf("the log did not grow ahead of its records: end %d, size %d", st.defs.end, st.defs.alloc)
	}
	end := st.defs.end
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := Open(vfs.Default, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if got := st2.LoadCommands(); !sameCommands(got, cmds) {
		t.Fatalf("read back %d commands, want %d", len(got), len(cmds))
	}
	if raw, _ := vfs.ReadFile(vfs.Default, name); int64(len(raw)) != end {
		t.Fatalf("the recovered log holds %d bytes, want its %d of records", len(raw), end)
	}
}

// Growing the log is best effort: when the zeros cannot be written (a
// nearly full disk), the records still are, and read back.
func TestDefinitionsLogWritesRecordsWhenPreallocationFails(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	fsys := vfs.NewFaulty(m, func(op vfs.Op, path string, n int) (int, error) {
		if op == vfs.OpWrite && strings.Contains(path, logPrefix) && n >= minPrealloc {
			return n / 3, vfs.ErrNoSpace // part of the zeros, then a full disk
		}
		return 0, nil
	})
	st, err := Open(fsys, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := testCommands()
	for _, c := range cmds {
		if err := st.SyncCommands(appendAll(t, st, [][]byte{c})); err != nil {
			t.Fatalf("a record that fits must be written without its preallocation: %v", err)
		}
	}
	st2, err := Open(m.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds) {
		t.Fatalf("read back %d commands, want %d", len(got), len(cmds))
	}
	_ = st.Close()
	_ = st2.Close()
}
