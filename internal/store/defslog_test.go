package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/vfs"
)

func testCommands() []broker.Command {
	return []broker.Command{
		broker.AddVHost{Name: "v2"},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{
			Name: "x", Type: "topic", Durable: true, Args: map[string]any{"alternate-exchange": "ae"}}}},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{
			Name: "q", Durable: true, Args: map[string]any{"x-message-ttl": int32(5)}}}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
		broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "x", Destination: "y", DestIsExchange: true, Key: "#"}},
		broker.DeleteQueue{VHost: "/", Name: "q"},
		broker.DeleteExchange{VHost: "/", Name: "x"},
	}
}

func appendAll(t *testing.T, st *Store, cmds []broker.Command) uint64 {
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

func sameCommands(a, b []broker.Command) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

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
	// A half-written record at the end, as a crash mid-write leaves it.
	name := logName(st.defs.dir, st.defs.gen)
	good, _ := vfs.ReadFile(m, name)
	f, _ := m.OpenWrite(name)
	rec := appendRecord(nil, recCommand, []byte(`{"op":"delete_queue","vhost":"/","name":"q"}`))
	_, _ = f.Write(rec[:len(rec)-3])
	_ = f.Sync()
	m2 := m.Crash(nil)
	st2, err := Open(m2, "/d", Options{})
	if err != nil {
		t.Fatalf("a torn tail must be cut, not refused: %v", err)
	}
	if cut, _ := vfs.ReadFile(m2, name); len(cut) != len(good) {
		t.Fatalf("the torn tail was not cut: %d bytes, want %d", len(cut), len(good))
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

func TestDefinitionsLogRefusesACorruptRecord(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	if err := st.SyncCommands(appendAll(t, st, testCommands())); err != nil {
		t.Fatal(err)
	}
	name := logName(st.defs.dir, st.defs.gen)
	raw, _ := vfs.ReadFile(m, name)
	raw[recordHeader+3] ^= 0xff // inside the first record; more follow
	f, _ := m.Create(name)
	_, _ = f.Write(raw)
	_ = f.Sync()
	_ = m.SyncDir(filepath.Dir(name))
	_, err := Open(m.Crash(nil), "/d", Options{})
	if err == nil || !strings.Contains(err.Error(), "corrupt record at offset 0") {
		t.Fatalf("a corrupt record in the middle must be refused, got %v", err)
	}
}

func TestDefinitionsSnapshotStartsANewLog(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	st, _ := Open(m, "/d", Options{})
	cmds := testCommands()
	appendAll(t, st, cmds[:4])
	d := &broker.Definitions{
		VHosts:    []string{"/", "v2"},
		Exchanges: []broker.ExchangeDef{{VHost: "/", ExchangeConfig: broker.ExchangeConfig{Name: "x", Type: "topic", Durable: true, Args: map[string]any{"alternate-exchange": "ae"}}}},
		Queues:    []broker.QueueDef{{VHost: "/", ID: "id1", QueueConfig: broker.QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-message-ttl": int32(5)}}}},
		Bindings:  []broker.BindingDef{{VHost: "/", Source: "x", Destination: "q", Key: "a.*", Args: map[string]any{"n": int64(1)}}},
	}
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
	if err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", d) {
		t.Fatalf("snapshot: %v %+v", err, got)
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
	 "exchanges":[{"vhost":"/","name":"x","type":"topic","arguments":"` + encodeArgs(map[string]any{"alternate-exchange": "ae"}) + `"}],
	 "queues":[{"vhost":"/","name":"q","id":"abc"}],
	 "bindings":[{"vhost":"/","source":"x","destination":"q","routing_key":"a.*"}]}`
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
		want := "&{VHosts:[/ v2] Exchanges:[{VHost:/ ExchangeConfig:{Name:x Type:topic Durable:true AutoDelete:false Internal:false Args:map[alternate-exchange:ae]}}] " +
			"Queues:[{VHost:/ ID:abc QueueConfig:{Name:q Durable:true Exclusive:false AutoDelete:false Owner:0 Args:map[] Internal:false}}] " +
			"Bindings:[{VHost:/ Source:x Destination:q DestIsExchange:false Key:a.* Args:map[]}]}"
		if got := fmt.Sprintf("%+v", d); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
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
	d := &broker.Definitions{VHosts: []string{"/", "v2"}}
	if err := st.SaveDefinitions(d); err != nil {
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
		if fail && op == vfs.OpWrite && strings.Contains(path, snapshotFile) {
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
	if err := st.SaveDefinitions(&broker.Definitions{VHosts: []string{"/"}}); !errors.Is(err, vfs.ErrNoSpace) {
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
