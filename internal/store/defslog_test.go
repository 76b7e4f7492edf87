package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// testCommands are opaque records as a caller might log them.
func testCommands() [][]byte {
	return [][]byte{
		[]byte(`{"op":"add_vhost","name":"v2"}`),
		[]byte(`{"op":"declare_exchange","vhost":"/","name":"x","type":"topic"}`),
		[]byte(`{"op":"declare_queue","vhost":"/","name":"q","id":"id1"}`),
		[]byte(`{"op":"bind","vhost":"/","source":"x","destination":"q","routing_key":"a.*"}`),
		{0, 1, 2, 0xff}, // the store never looks inside
		[]byte(`{"op":"bind","vhost":"/","source":"x","destination":"y","destination_is_exchange":true,"routing_key":"#"}`),
		[]byte(`{"op":"delete_queue","vhost":"/","name":"q"}`),
		[]byte(`{"op":"delete_exchange","vhost":"/","name":"x"}`),
	}
}

func appendAll(t *testing.T, st *Store, cmds [][]byte) uint64 {
	t.Helper()
	var seq uint64
	for _, c := range cmds {
		var err error
		if seq, err = st.AppendCommand(c); err != nil {
			t.Fatal(err)
		}
	}
	return seq
}

func sameCommands(got []CommandRecord, want [][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i]) {
			return false
		}
	}
	return true
}

func TestDefinitionsLogKeepsWhatWasSyncedAcrossACrash(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, err := Open(m, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := testCommands()
	if err := st.SyncCommands(appendAll(t, st, cmds[:6])); err != nil {
		t.Fatal(err)
	}
	appendAll(t, st, cmds[6:]) // never synced: lost in the crash
	for _, torn := range []func(string, int) int{nil, func(_ string, n int) int { return n / 2 }} {
		st2, err := Open(m.Crash(torn), "/d", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := st2.LoadCommands(); !sameCommands(got, cmds[:6]) {
			t.Fatalf("got %+v\nwant %+v", got, cmds[:6])
		}
		_ = st2.Close()
	}
	_ = st.Close()
}

func TestDefinitionsLogCutsATornTailAndGoesOn(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	cmds := testCommands()
	if err := st.SyncCommands(appendAll(t, st, cmds[:3])); err != nil {
		t.Fatal(err)
	}
	// A half-written record after the last, as a crash mid-write leaves
	// it in the preallocated zeros.
	name := logName(st.defs.dir, st.defs.gen)
	good := st.defs.end
	f, _ := m.OpenWrite(name)
	rec := appendRecord(nil, recCommand, []byte(`{"op":"delete_queue","vhost":"/","name":"q"}`))
	_, _ = f.WriteAt(rec[:len(rec)-3], good)
	_ = f.Sync()
	m2 := m.Crash(nil)
	st2, err := Open(m2, "/d", Options{})
	if err != nil {
		t.Fatalf("a torn tail must be cut, not refused: %v", err)
	}
	if cut, _ := vfs.ReadFile(m2, name); int64(len(cut)) != good {
		t.Fatalf("the torn tail was not cut: %d bytes, want %d", len(cut), good)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds[:3]) {
		t.Fatalf("got %+v", got)
	}
	if err := st2.SyncCommands(appendAll(t, st2, cmds[3:])); err != nil {
		t.Fatal(err)
	}
	st3, err := Open(m2.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st3.LoadCommands(); !sameCommands(got, cmds) {
		t.Fatalf("after the cut tail, got %+v", got)
	}
}

// manyCommands are n distinct commands of about 200 bytes.
func manyCommands(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, `{"op":"declare_queue","vhost":"/","name":"q%05d","id":"%0160d"}`, i, i)
	}
	return out
}

// A damaged record with intact records written by earlier syncs further
// than the torn-write window after it is corruption: refused.
func TestDefinitionsLogRefusesACorruptRecord(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	cmds := manyCommands(tornWindow/200 + 100)
	for _, c := range cmds { // one sync each, as one client's declares
		if err := st.SyncCommands(appendAll(t, st, [][]byte{c})); err != nil {
			t.Fatal(err)
		}
	}
	name := logName(st.defs.dir, st.defs.gen)
	raw, _ := vfs.ReadFile(m, name)
	raw[recordHeader+3] ^= 0xff // inside the first record; 64 KiB and more follow
	f, _ := m.Create(name)
	_, _ = f.Write(raw)
	_ = f.Sync()
	_ = m.SyncDir(filepath.Dir(name))
	_, err := Open(m.Crash(nil), "/d", Options{})
	if err == nil || !strings.Contains(err.Error(), "corrupt record at offset 0") {
		t.Fatalf("a corrupt record in the middle must be refused, got %v", err)
	}
}

// Within the torn-write window of the end, damage cannot be told from a
// power cut during the last write: the log ends before it. This is the
// price of preallocation (before it, only the last record was in doubt).
func TestDefinitionsLogCutsDamageWithinTheTornWindow(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	cmds := testCommands()
	if err := st.SyncCommands(appendAll(t, st, cmds)); err != nil {
		t.Fatal(err)
	}
	name := logName(st.defs.dir, st.defs.gen)
	raw, _ := vfs.ReadFile(m, name)
	second := len(appendRecord(nil, recCommand, cmds[0]))
	raw[second+recordHeader+3] ^= 0xff
	f, _ := m.Create(name)
	_, _ = f.Write(raw)
	_ = f.Sync()
	_ = m.SyncDir(filepath.Dir(name))
	st2, err := Open(m.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds[:1]) {
		t.Fatalf("got %d commands, want the one before the damage", len(got))
	}
}

func TestDefinitionsSnapshotStartsANewLog(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	cmds := testCommands()
	appendAll(t, st, cmds[:4])
	d := []byte(`{"version":1,"vhosts":["/","v2"]}`)
	if err := st.SaveDefinitions(d); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncCommands(appendAll(t, st, cmds[4:])); err != nil {
		t.Fatal(err)
	}
	m2 := m.Crash(nil)
	st2, err := Open(m2, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st2.LoadDefinitions()
	if err != nil || !bytes.Equal(got, d) {
		t.Fatalf("snapshot: %v %q", err, got)
	}
	if c := st2.LoadCommands(); !sameCommands(c, cmds[4:]) {
		t.Fatalf("log after the snapshot: %+v", c)
	}
	names, _ := m2.List(filepath.Join("/d", defsDir))
	if len(names) != 3 { // the snapshot, the log replayed, the new log
		t.Fatalf("definitions directory holds %v", names)
	}
}

func TestDefinitionsJSONFromThePreviousVersionIsMigrated(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	_ = m.MkdirAll("/d")
	old := `{"version":1,"vhosts":["/","v2"],
	 "queues":[{"vhost":"/","name":"q","id":"abc"}]}`
	if err := vfs.WriteFileAtomic(m, "/d/definitions.json", []byte(old)); err != nil {
		t.Fatal(err)
	}
	st, err := Open(m, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vfs.ReadFile(m, "/d/definitions.json"); !errors.Is(err, vfs.ErrNotExist) {
		t.Fatalf("definitions.json is still there: %v", err)
	}
	for _, fsys := range []vfs.FS{m, m.Crash(nil)} {
		st2, err := Open(fsys, "/d", Options{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := st2.LoadDefinitions()
		if err != nil {
			t.Fatal(err)
		}
		if string(d) != old {
			t.Fatalf("got %q, want the previous version's document unchanged", d)
		}
		if names, _ := fsys.List("/d/definitions"); !slices.Contains(names, "snapshot-0000000000000001") {
			t.Fatalf("definitions directory holds %v", names)
		}
	}
	_ = st.Close()
}

func TestDefinitionsLogWriteFailureAsksForASnapshot(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	var fail bool
	fsys := vfs.NewFaulty(m, func(op vfs.Op, path string, n int) (int, error) {
		if fail && op == vfs.OpWrite && strings.Contains(path, logPrefix) {
			return n / 2, vfs.ErrNoSpace
		}
		return 0, nil
	})
	st, err := Open(fsys, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := testCommands()
	fail = true
	if err := st.SyncCommands(appendAll(t, st, cmds[:2])); !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("sync after a failed write: %v", err)
	}
	if _, err := st.AppendCommand(cmds[2]); err == nil {
		t.Fatal("appended after a partial write")
	}
	if !st.SnapshotDue() {
		t.Fatal("a failed log must ask for a snapshot")
	}
	fail = false
	if err := st.SaveDefinitions([]byte(`{"vhosts":["/","v2"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := st.SyncCommands(appendAll(t, st, cmds[2:3])); err != nil {
		t.Fatal(err)
	}
	st2, err := Open(m.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds[2:3]) {
		t.Fatalf("got %+v", got)
	}
}

func TestDefinitionsSnapshotFailureLeavesTheLogWorking(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	var fail bool
	fsys := vfs.NewFaulty(m, func(op vfs.Op, path string, n int) (int, error) {
		if fail && op == vfs.OpWrite && strings.Contains(path, snapshotPrefix) {
			return 0, vfs.ErrNoSpace
		}
		return 0, nil
	})
	st, err := Open(fsys, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmds := testCommands()
	if err := st.SyncCommands(appendAll(t, st, cmds[:3])); err != nil {
		t.Fatal(err)
	}
	fail = true
	if err := st.SaveDefinitions([]byte(`{"vhosts":["/"]}`)); !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("snapshot on a full disk: %v", err)
	}
	if err := st.SyncCommands(appendAll(t, st, cmds[3:])); err != nil {
		t.Fatalf("the log must go on after a failed snapshot: %v", err)
	}
	st2, err := Open(m.Crash(nil), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st2.LoadCommands(); !sameCommands(got, cmds) {
		t.Fatalf("got %+v", got)
	}
}

func TestRemoveOrphanLogsKeepsLiveAndOpenLogs(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, err := Open(m, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"live", "orphan", "open"} {
		_ = m.MkdirAll(filepath.Join("/d/queues", id))
		f, _ := m.Create(filepath.Join("/d/queues", id, "00000000000000000000.seg"))
		_ = f.Close()
	}
	if _, err := st.QueueLog("open"); err != nil {
		t.Fatal(err)
	}
	n, err := st.RemoveOrphanLogs(map[string]bool{"live": true})
	if err != nil || n != 1 {
		t.Fatalf("removed %d: %v", n, err)
	}
	names, _ := m.List("/d/queues")
	if fmt.Sprint(names) != "[live open]" {
		t.Fatalf("left %v", names)
	}
}

// TestDefinitionsNewestSnapshotWins: each snapshot removes the older ones;
// two left by a crash before that removal load as the newest, and the
// older goes.
func TestDefinitionsNewestSnapshotWins(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	for _, doc := range []string{"one", "two"} {
		if err := st.SaveDefinitions([]byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join("/d", defsDir)
	names, _ := m.List(dir)
	if gens := snapshotGens(names); len(gens) != 1 {
		t.Fatalf("snapshots left: %v", names)
	}
	// As a crash between the new snapshot's rename and the old one's
	// removal leaves it.
	if err := vfs.WriteFileAtomic(m, snapshotName(dir, 1), []byte("stale")); err != nil {
		t.Fatal(err)
	}
	m2 := m.Crash(nil)
	st2, err := Open(m2, "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if doc, err := st2.LoadDefinitions(); err != nil || string(doc) != "two" {
		t.Fatalf("loaded %q, %v", doc, err)
	}
	if names, _ := m2.List(dir); len(snapshotGens(names)) != 1 {
		t.Fatalf("the stale snapshot stayed: %v", names)
	}
}

// A snapshot is due after SnapshotEvery records only once the log also
// holds half the last snapshot's bytes, so a large node does not rewrite
// its whole definitions for every few thousand changes; that holds for a
// snapshot read at start-up too.
func TestDefinitionsSnapshotWaitsForHalfTheLastSnapshotsSize(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, err := Open(m, "/d", Options{SnapshotEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte(`{"op":"declare_queue","vhost":"/","name":"q","id":"` + strings.Repeat("i", 100) + `"}`)
	fill := func(st *Store) int {
		t.Helper()
		for n := 1; n <= 1000; n++ {
			if err := st.SyncCommands(appendAll(t, st, [][]byte{rec})); err != nil {
				t.Fatal(err)
			}
			if st.SnapshotDue() {
				return n
			}
		}
		t.Fatal("no snapshot due after 1,000 records")
		return 0
	}
	if n := fill(st); n != 4 {
		t.Fatalf("small snapshot: due after %d records, want SnapshotEvery (4)", n)
	}
	big := []byte(`{"vhosts":["/"],"pad":"` + strings.Repeat("x", 20000) + `"}`)
	if err := st.SaveDefinitions(big); err != nil {
		t.Fatal(err)
	}
	recBytes := len(rec) + recordHeader + 1        // the frame: header and type byte
	want := (len(big)/2 + recBytes - 1) / recBytes // records holding half the snapshot
	if n := fill(st); n != want {
		t.Fatalf("after a %d-byte snapshot: due after %d records, want %d", len(big), n, want)
	}
	_ = st.Close()
	st2, err := Open(m.Crash(nil), "/d", Options{SnapshotEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if n := fill(st2); n != want {
		t.Fatalf("reopened: due after %d records, want %d (the snapshot read at open counts)", n, want)
	}
}
