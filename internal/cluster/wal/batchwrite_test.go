package wal

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/vfs"
)

// bigEnt is an entry whose data is size bytes.
func bigEnt(index, term uint64, size int) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term),
		Type: raftpb.EntryNormal.Enum(), Data: bytes.Repeat([]byte{byte(index)}, size)}
}

// heldWAL opens a WAL whose first fsync waits until release is closed,
// counting the writes made after it, so the saves queued meanwhile go in
// one batch of several records.
func heldWAL(t *testing.T) (m *vfs.MemFS, w *WAL, held, release chan struct{}, writes func() int) {
	m = vfs.NewMem()
	held, release = make(chan struct{}), make(chan struct{})
	var first sync.Once
	var mu sync.Mutex
	n, synced := 0, false
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		switch op {
		case vfs.OpSync:
			first.Do(func() { close(held); <-release })
			mu.Lock()
			synced = true
			mu.Unlock()
		case vfs.OpWrite:
			mu.Lock()
			if synced {
				n++
			}
			mu.Unlock()
		}
		return 0, nil
	})
	w = openWAL(t, f, Options{})
	return m, w, held, release, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// TestBatchOfLargeAndSmallRecords: a batch of several records, some over
// bigRecord (written from their own buffers) and some small (gathered),
// is written in order and recovers whole; a batch of one record is one
// write.
func TestBatchOfLargeAndSmallRecords(t *testing.T) {
	m, w, held, release, writes := heldWAL(t)
	groups := []uint64{1, 2, 3, 4}
	var wg sync.WaitGroup
	save := func(g uint64, e []*raftpb.Entry, hs *raftpb.HardState) {
		wg.Add(1)
		w.Group(g).Save(hs, e, nil, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	save(1, ents(1, 1, 1), hardState(1, 1, 0))
	<-held
	// Queued while the first fsync waits: one batch. Group 1 small, 2
	// large, 3 small, 4 large then small again, so gathered and own-buffer
	// writes alternate.
	save(1, ents(2, 3, 1), hardState(1, 1, 1))
	save(2, []*raftpb.Entry{bigEnt(1, 1, 40<<10), bigEnt(2, 1, 10)}, hardState(1, 1, 0))
	save(3, ents(1, 2, 1), hardState(1, 1, 0))
	save(4, []*raftpb.Entry{bigEnt(1, 1, 100<<10)}, hardState(1, 1, 0))
	save(4, []*raftpb.Entry{bigEnt(2, 1, 5)}, hardState(1, 1, 1))
	close(release)
	waitGroup(t, &wg)
	if n := writes(); n < 4 {
		t.Fatalf("%d writes for the batch of six records, two of them large: want one per run of small records and one per large record", n)
	}
	before := writes()
	save(2, []*raftpb.Entry{bigEnt(3, 1, 64<<10)}, nil)
	waitGroup(t, &wg)
	// Its entry's data is written from the entry's memory (saveparts.go):
	// the record's head, then the data; on the operating system's files
	// the two go in one writev (TestSavePartsOnDisk).
	if n := writes() - before; n != 2 {
		t.Fatalf("a batch of one large record took %d writes, want 2 (head, data)", n)
	}
	want := map[uint64]string{}
	for _, g := range groups {
		want[g] = canonical(w.Group(g))
	}
	_ = w.Close()
	w2 := openWAL(t, m.Crash(nil), Options{})
	defer w2.Close()
	for _, g := range groups {
		if got := canonical(w2.Group(g)); got != want[g] {
			t.Fatalf("group %d after restart:\n got %s\nwant %s", g, got, want[g])
		}
	}
}

// TestBatchTornBetweenItsWrites: a power cut after any prefix of the
// bytes of a batch written in several writes (before its fsync) loses that
// batch whole and keeps every earlier one.
func TestBatchTornBetweenItsWrites(t *testing.T) {
	m, w, held, release, _ := heldWAL(t)
	var wg sync.WaitGroup
	save := func(g uint64, e []*raftpb.Entry, hs *raftpb.HardState) {
		wg.Add(1)
		w.Group(g).Save(hs, e, nil, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	save(1, ents(1, 1, 1), hardState(1, 1, 0))
	<-held
	durable := canonical(w.Group(1))
	save(1, ents(2, 2, 1), hardState(1, 1, 1))
	save(2, []*raftpb.Entry{bigEnt(1, 1, 50<<10)}, hardState(1, 1, 0))
	save(1, ents(3, 3, 1), hardState(1, 1, 2))
	// The first batch is written, its fsync waits: the second batch is
	// only queued. Let the first finish and the second be written and
	// synced, then look at what a crash between the second batch's
	// writes leaves, by cutting its bytes at every offset that matters.
	close(release)
	waitGroup(t, &wg)
	after1 := map[uint64]string{1: canonical(w.Group(1)), 2: canonical(w.Group(2))}
	_ = w.Close()
	// Rebuild what a cut leaves: the first batch synced, then any prefix
	// of the second batch's bytes.
	raw, err := vfs.ReadFile(m, "/wal/"+segName(1))
	if err != nil {
		t.Fatal(err)
	}
	_, _, firstLen, err := parseRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	firstBatch := firstLen + int(binary.LittleEndian.Uint32(raw[recordHeader+1:]))
	for _, cut := range []int{firstBatch, firstBatch + 1, firstBatch + batchHeaderLen, firstBatch + 200, (firstBatch + len(raw)) / 2, len(raw) - 1} {
		c := vfs.NewMem()
		if err := c.MkdirAll("/wal"); err != nil {
			t.Fatal(err)
		}
		f, err := c.Create("/wal/" + segName(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(raw[:cut]); err != nil {
			t.Fatal(err)
		}
		_ = f.Sync()
		_ = c.SyncDir("/wal")
		w2 := openWAL(t, c, Options{})
		if got := canonical(w2.Group(1)); got != durable {
			t.Fatalf("cut at %d of %d: group 1\n got %s\nwant %s", cut, len(raw), got, durable)
		}
		if last, _ := w2.Group(2).LastIndex(); last != 0 {
			t.Fatalf("cut at %d of %d: group 2 kept index %d of a torn batch", cut, len(raw), last)
		}
		_ = w2.Close()
	}
	w3 := openWAL(t, m.Crash(nil), Options{})
	defer w3.Close()
	for g, want := range after1 {
		if got := canonical(w3.Group(g)); got != want {
			t.Fatalf("whole log, group %d:\n got %s\nwant %s", g, got, want)
		}
	}
}

func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("saves never completed")
	}
}

// TestSnapshotPartsEncodeAsProto: a snapshot record queued in parts is
// byte for byte the record encodeQueued makes with proto.Marshal.
func TestSnapshotPartsEncodeAsProto(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, splitSnapshotFrom, splitSnapshotFrom + 1, 300<<10 + 7, 3 << 20} {
		for _, voters := range [][]uint64{nil, {1}, {1, 2, 3, 1 << 60}} {
			snap := snapshot(1<<33+uint64(n), 7, string(bytes.Repeat([]byte{0xa5}, n)), voters...)
			want, err := encodeQueued(nil, &record{typ: recSnapshot, group: 1<<63 + 5, snap: snap})
			if err != nil {
				t.Fatal(err)
			}
			head, data, tail, err := encodeSnapshotParts(nil, 1<<63+5, snap)
			if err != nil {
				t.Fatal(err)
			}
			got := append(append(append([]byte(nil), head...), data...), tail...)
			if !bytes.Equal(got, want) {
				t.Fatalf("data %d bytes, voters %v: parts encode %d bytes, proto %d, differing", n, voters, len(got), len(want))
			}
		}
	}
}

// TestLargeSnapshotRecoversWithBatchmates: a snapshot queued in parts,
// written in a batch with other groups' saves or alone, recovers whole;
// cut anywhere in it before its fsync, its batch is a torn write.
func TestLargeSnapshotRecoversWithBatchmates(t *testing.T) {
	m, w, held, release, _ := heldWAL(t)
	var wg sync.WaitGroup
	save := func(g uint64, e []*raftpb.Entry, hs *raftpb.HardState) {
		wg.Add(1)
		w.Group(g).Save(hs, e, nil, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	save(1, ents(1, 3, 1), hardState(1, 1, 3))
	<-held
	save(2, ents(1, 2, 1), hardState(1, 1, 2))
	state := bytes.Repeat([]byte("state"), 40<<10) // 200 KiB
	snapDone := make(chan error, 1)
	go func() {
		_, err := w.Group(1).CreateSnapshot(3, nil, state)
		snapDone <- err
	}()
	// The snapshot is queued behind group 2's save, in the same batch,
	// unless the writer took the batch first: both ways must recover.
	time.Sleep(10 * time.Millisecond)
	close(release)
	waitGroup(t, &wg)
	if err := <-snapDone; err != nil {
		t.Fatal(err)
	}
	if _, err := w.Group(1).CreateSnapshot(3, nil, state); err == nil {
		t.Fatal("a second snapshot at the same index was accepted")
	}
	want := map[uint64]string{1: canonical(w.Group(1)), 2: canonical(w.Group(2))}
	_ = w.Close()
	raw, err := vfs.ReadFile(m, "/wal/"+segName(1))
	if err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, m.Crash(nil), Options{})
	for g, s := range want {
		if got := canonical(w2.Group(g)); got != s {
			t.Fatalf("group %d after restart:\n got %s\nwant %s", g, got, s)
		}
	}
	snap, _ := w2.Group(1).Snapshot()
	if !bytes.Equal(snap.GetData(), state) {
		t.Fatalf("recovered snapshot of %d bytes, want the %d-byte state", len(snap.GetData()), len(state))
	}
	_ = w2.Close()
	// Cut inside the snapshot's data: everything before its batch stays.
	at := bytes.Index(raw, state[:1000])
	if at < 0 {
		t.Fatal("snapshot data not found in the segment")
	}
	for _, cut := range []int{at, at + 1, at + len(state)/2, at + len(state) - 1} {
		c := vfs.NewMem()
		if err := c.MkdirAll("/wal"); err != nil {
			t.Fatal(err)
		}
		f, err := c.Create("/wal/" + segName(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(raw[:cut]); err != nil {
			t.Fatal(err)
		}
		_ = f.Sync()
		_ = c.SyncDir("/wal")
		w3 := openWAL(t, c, Options{})
		s, _ := w3.Group(1).Snapshot()
		if len(s.GetData()) != 0 {
			t.Fatalf("cut at %d inside the snapshot: recovered a snapshot of %d bytes", cut, len(s.GetData()))
		}
		if last, _ := w3.Group(1).LastIndex(); last != 3 {
			t.Fatalf("cut at %d: group 1 recovered to %d, want its first save (3)", cut, last)
		}
		_ = w3.Close()
	}
}

// TestRecBufClasses: a pooled record buffer holds what was asked for and
// a save's record fits the buffer its estimate asked for.
func TestRecBufClasses(t *testing.T) {
	for _, n := range []int{0, 1, minRecBuf, minRecBuf + 1, 1 << 20, 3<<20 + 1, minRecBuf << (recClasses - 1), 20 << 20} {
		b := getRecBuf(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("getRecBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		putRecBuf(append(b, 1, 2, 3))
	}
	for _, sizes := range [][]int{{0}, {1, 2, 3}, {40 << 10}, {100, 300 << 10, 5}, {1 << 20, 1 << 20, 1 << 20}} {
		var es []*raftpb.Entry
		for i, n := range sizes {
			es = append(es, bigEnt(uint64(1<<40+i), 1<<40, n))
		}
		r := &record{typ: recSave, group: 1 << 62, hs: hardState(1<<40, 1<<60, 1<<40), ents: es}
		want := recordRoom + int(r.sizeEstimate()) + 16*len(es) + 64
		got, err := encodeQueued(make([]byte, 0, want), r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > want {
			t.Fatalf("entries %v: a record of %d bytes for an estimate of %d: the buffer grows", sizes, len(got), want)
		}
	}
}
