package store

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// blockingFaults is an injector whose failures a test switches: writes to
// paths containing failWrites fail with ENOSPC, fsyncs of paths containing
// holdSync wait until released.
type blockingFaults struct {
	mu         sync.Mutex
	failWrites string
	failSyncs  string
	holdSync   string
	held       chan struct{} // closed when a held fsync starts
	release    chan struct{}
}

func newBlockingFaults() *blockingFaults {
	return &blockingFaults{held: make(chan struct{}), release: make(chan struct{})}
}

func (f *blockingFaults) inject(op vfs.Op, path string, _ int) (int, error) {
	f.mu.Lock()
	fw, fs, hs := f.failWrites, f.failSyncs, f.holdSync
	f.mu.Unlock()
	switch {
	case op == vfs.OpWrite && fw != "" && strings.Contains(path, fw):
		return 0, vfs.ErrNoSpace
	case op == vfs.OpSync && fs != "" && strings.Contains(path, fs):
		return 0, vfs.ErrIO
	case op == vfs.OpSync && hs != "" && strings.Contains(path, hs):
		f.mu.Lock()
		f.holdSync = ""
		f.mu.Unlock()
		close(f.held)
		<-f.release
	}
	return 0, nil
}

func (f *blockingFaults) set(failWrites, failSyncs string) {
	f.mu.Lock()
	f.failWrites, f.failSyncs = failWrites, failSyncs
	f.mu.Unlock()
}

// TestFailedWriteIsNeverConfirmedAfterManyGenerations: a record whose write
// failed must be reported failed however many writes of the log — failed
// (100) and good (100) — follow before its completion is processed (the
// bookkeeping once forgot failures older than 64 write generations and
// reported success for them: this test failed with "message 0 confirmed
// although its write failed").
func TestFailedWriteIsNeverConfirmedAfterManyGenerations(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	faults := newBlockingFaults()
	f := vfs.NewFaulty(m, faults.inject)
	st, err := Open(f, "/data", Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ql1, _ := st.QueueLog("q1")
	ql2, _ := st.QueueLog("q2")
	l1, l2 := ql1, ql2
	r := newResults()

	// Hold the committer inside an fsync of q2, so q1's completions wait.
	faults.mu.Lock()
	faults.holdSync = "q2"
	faults.mu.Unlock()
	if err := l2.Append(0, msg(0), r, 1000); err != nil {
		t.Fatal(err)
	}
	select {
	case <-faults.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the committer never synced q2")
	}

	// Message 0 of q1: its write fails (a read forces the flush).
	faults.set("q1", "")
	if err := l1.Append(0, msg(0), r, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Read(0); err == nil {
		t.Fatal("read of a message whose write failed succeeded")
	}
	// 100 more failed writes of q1 before the committer gets to it.
	for i := uint64(1); i <= 100; i++ {
		if err := l1.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
		_, _ = l1.Read(i)
	}
	// Then 100 good writes, still before the committer gets to q1.
	faults.set("", "")
	for i := uint64(101); i <= 200; i++ {
		if err := l1.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
		if _, err := l1.Read(i); err != nil {
			t.Fatal(err)
		}
	}
	close(faults.release)
	r.wait(t, 202)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := uint64(0); i <= 100; i++ {
		if r.ok[i] {
			t.Fatalf("message %d confirmed although its write failed", i)
		}
	}
	for _, i := range []uint64{101, 200, 1000} {
		if !r.ok[i] {
			t.Fatalf("good write %d not confirmed: %v", i, r.errs[i])
		}
	}
	_ = st.Close()
}

// TestFsyncFailureRewindsToTheLastGoodSync: after a failed fsync the log
// cuts its active segment back to the end of the last good fsync, nacks
// everything written after it, and appends again from there; a recovery
// finds every confirmed message and none of the failed ones.
func TestFsyncFailureRewindsToTheLastGoodSync(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	faults := newBlockingFaults()
	f := vfs.NewFaulty(m, faults.inject)
	st, l := openTest(t, f, 1<<20)
	r := newResults()
	for i := uint64(0); i < 10; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, 10)
	l.Ack(3) // an ack written with the failing batch must be kept and rewritten
	faults.set("", "q1")
	for i := uint64(10); i < 20; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			r.Durable(i, err) // refused at once: the log is not yet cut back
		}
	}
	r.wait(t, 20)
	faults.set("", "")
	var appendErr error
	for i := uint64(20); i < 25; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			appendErr = err
		}
	}
	if appendErr != nil {
		t.Fatal("log unusable after the fsync error passed:", appendErr)
	}
	r.wait(t, 25)
	r.mu.Lock()
	for i := uint64(0); i < 25; i++ {
		wantOK := i < 10 || i >= 20
		if r.ok[i] != wantOK {
			t.Errorf("message %d: confirmed %v, want %v (%v)", i, r.ok[i], wantOK, r.errs[i])
		}
	}
	r.mu.Unlock()
	// Power loss: only fsynced bytes survive.
	crashed := m.Crash(nil)
	_ = st
	st2, l2 := openTest(t, crashed, 1<<20)
	defer st2.Close()
	var got []uint64
	for _, sm := range l2.Recovered() {
		got = append(got, sm.Seq)
	}
	want := []uint64{0, 1, 2, 4, 5, 6, 7, 8, 9, 20, 21, 22, 23, 24}
	if len(got) != len(want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("recovered %v, want %v", got, want)
		}
	}
}

// TestFsyncFailureAfterRecoveryKeepsTheRecovered: what recovery found is
// the known good end; a failed fsync after a restart cuts back to it, not
// to the start of the segment.
func TestFsyncFailureAfterRecoveryKeepsTheRecovered(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, l := openTest(t, m, 1<<20)
	r := newResults()
	for i := uint64(0); i < 10; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, 10)
	l.Ack(0)
	_ = st.Close()

	faults := newBlockingFaults()
	faults.set("", "q1")
	st2, l2 := openTest(t, vfs.NewFaulty(m, faults.inject), 1<<20)
	r2 := newResults()
	if err := l2.Append(10, msg(10), r2, 10); err != nil {
		t.Fatal(err)
	}
	r2.wait(t, 1)
	if r2.ok[10] {
		t.Fatal("confirmed although its fsync failed")
	}
	faults.set("", "")
	_ = st2.Close()
	st3, l3 := openTest(t, m, 1<<20)
	defer st3.Close()
	if rec := l3.Recovered(); len(rec) != 9 || rec[0].Seq != 1 || rec[8].Seq != 9 {
		t.Fatalf("recovered %+v after a failed fsync following a restart, want 1..9", rec)
	}
}

// TestReserveRefusesMessagesButKeepsAcks: below the reserve, appends of
// messages fail with ENOSPC at once while acks are still written; the
// free-space callback sees the measurements.
func TestReserveRefusesMessagesButKeepsAcks(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	m.SetFreeSpace(10 << 20)
	var seen atomic.Int64
	st, err := Open(m, "/data", Options{Reserve: 1 << 20, OnFreeSpace: func(free uint64) { seen.Store(int64(free)) }})
	if err != nil {
		t.Fatal(err)
	}
	ql, _ := st.QueueLog("q1")
	l := ql
	r := newResults()
	for i := uint64(0); i < 10; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, 10)
	m.SetFreeSpace(512 << 10)
	if _, err := st.FreeSpace(); err != nil || seen.Load() != 512<<10 {
		t.Fatalf("measured %d, %v", seen.Load(), err)
	}
	if err := l.Append(10, msg(10), r, 10); !errors.Is(err, vfs.ErrNoSpace) {
		t.Fatalf("append below the reserve: %v", err)
	}
	l.Ack(0)
	m.SetFreeSpace(10 << 20)
	_, _ = st.FreeSpace()
	if err := l.Append(11, msg(11), r, 11); err != nil {
		t.Fatal("append refused after space returned:", err)
	}
	r.wait(t, 11)
	_ = st.Close()
	st2, l2 := openTest(t, m, 0)
	defer st2.Close()
	rec := l2.Recovered()
	if len(rec) != 10 || rec[0].Seq != 1 || rec[9].Seq != 11 {
		t.Fatalf("recovered %+v: want 1..9 and 11 (the ack below the reserve written)", rec)
	}
}

// TestDrainedLogStartsOver: a log whose every message is acked starts a
// new segment past every seq used and deletes the old one, so the space
// comes back without the ack records.
func TestDrainedLogStartsOver(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, l := openTest(t, m, 64<<20)
	r := newResults()
	big := msg(0)
	big.Body = make([]byte, 64<<10)
	const n = 40 // 2.5 MiB: over resetBytes
	for i := uint64(0); i < n; i++ {
		if err := l.Append(i, big, r, i); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, n)
	for i := uint64(0); i < n; i++ {
		l.Ack(i)
	}
	names, _ := m.List("/data/queues/q1")
	if len(names) != 1 || names[0] != "00000000000000000040.seg" {
		t.Fatalf("files after draining: %v", names)
	}
	if err := l.Append(n, msg(n), r, n); err != nil {
		t.Fatal(err)
	}
	r.wait(t, n+1)
	_ = st.Close()
	st2, l2 := openTest(t, m, 64<<20)
	defer st2.Close()
	if rec := l2.Recovered(); len(rec) != 1 || rec[0].Seq != n || l2.NextSeq() != n+1 {
		t.Fatalf("recovered %+v, next seq %d", rec, l2.NextSeq())
	}
}
