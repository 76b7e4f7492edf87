package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// results collects completions.
type results struct {
	mu   sync.Mutex
	ok   map[uint64]bool
	errs map[uint64]error
	n    int
}

func newResults() *results { return &results{ok: map[uint64]bool{}, errs: map[uint64]error{}} }

func (r *results) Durable(token uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if err != nil {
		r.errs[token] = err
	} else {
		r.ok[token] = true
	}
}

func (r *results) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := r.n
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d completions", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func msg(i uint64) *message.Message {
	return &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte(fmt.Sprintf("body-%d", i)),
		Published: int64(i), Props: message.Properties{DeliveryMode: 2, Headers: map[string]any{"i": int64(i)}}}
}

func openTest(t *testing.T, fsys vfs.FS, segSize int64) (*Store, *QueueLog) {
	t.Helper()
	st, err := Open(fsys, "/data", Options{SegmentSize: segSize})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.QueueLog("q1")
	if err != nil {
		t.Fatal(err)
	}
	return st, l
}

func TestAppendReadAckAndSegmentDeletion(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, l := openTest(t, m, 1024)
	r := newResults()
	const n = 200
	for i := uint64(0); i < n; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, n)
	if len(r.errs) != 0 {
		t.Fatal(r.errs)
	}
	for _, i := range []uint64{0, 57, n - 1} {
		got, err := l.Read(i)
		if err != nil || string(got.Body) != fmt.Sprintf("body-%d", i) || got.Props.Headers["i"] != int64(i) {
			t.Fatalf("read %d: %v %v", i, got, err)
		}
	}
	segs := len(l.segs)
	if segs < 5 {
		t.Fatalf("only %d segments for %d messages with 1 KiB segments", segs, n)
	}
	for i := uint64(0); i < n-10; i++ {
		l.Ack(i)
	}
	if len(l.segs) >= segs || len(l.segs) > 3 {
		t.Fatalf("%d segments left of %d after acking all but 10 messages", len(l.segs), segs)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, l2 := openTest(t, m, 1024)
	defer st2.Close()
	rec := l2.Recovered()
	if len(rec) != 10 || rec[0].Seq != n-10 || rec[9].Seq != n-1 {
		t.Fatalf("recovered %d messages: %+v", len(rec), rec)
	}
	if got, err := l2.Read(n - 1); err != nil || string(got.Body) != fmt.Sprintf("body-%d", n-1) {
		t.Fatalf("%v %v", got, err)
	}
}

// TestCrashAtEveryPoint runs a workload, crashes the file system after
// each step (keeping only fsynced data, with and without torn tails) and
// recovers: every confirmed, unacked message is there exactly once and in
// order, nothing unknown or corrupt appears, and an ack followed by a
// confirmed publish stays.
func TestCrashAtEveryPoint(t *testing.T) {
	t.Parallel()
	for step := 1; step <= 60; step++ {
		for _, torn := range []bool{false, true} {
			crashAfter(t, step, torn)
		}
	}
}

func crashAfter(t *testing.T, steps int, torn bool) {
	t.Helper()
	m := vfs.NewCrashable()
	st, l := openTest(t, m, 600)
	r := newResults()
	rng := rand.New(rand.NewPCG(uint64(steps), 7))
	var next uint64
	acked := map[uint64]bool{}
	ackBarrier := map[uint64]bool{} // acked and followed by a confirmed append
	var appended []uint64
	for s := 0; s < steps; s++ {
		if rng.IntN(4) == 0 && len(appended) > 0 {
			q := appended[rng.IntN(len(appended))]
			if !acked[q] {
				l.Ack(q)
				acked[q] = true
			}
			continue
		}
		if err := l.Append(next, msg(next), r, next); err != nil {
			t.Fatal(err)
		}
		appended = append(appended, next)
		next++
		if rng.IntN(3) == 0 {
			r.wait(t, len(appended)) // let a batch commit now and then
			for q := range acked {
				ackBarrier[q] = true
			}
		}
	}
	r.mu.Lock()
	confirmed := map[uint64]bool{}
	for k := range r.ok {
		confirmed[k] = true
	}
	r.mu.Unlock()
	var after *vfs.MemFS
	if torn {
		after = m.Crash(func(_ string, unsynced int) int { return unsynced / 2 })
	} else {
		after = m.Crash(nil)
	}
	_ = st // the crashed process's store is abandoned, as kill -9 would
	st2, l2 := openTest(t, after, 600)
	defer st2.Close()
	rec := l2.Recovered()
	seen := map[uint64]bool{}
	var last int64 = -1
	for _, sm := range rec {
		if seen[sm.Seq] || int64(sm.Seq) <= last || sm.Seq >= next {
			t.Fatalf("steps %d torn %v: recovered seq %d out of order, duplicated or unknown", steps, torn, sm.Seq)
		}
		seen[sm.Seq], last = true, int64(sm.Seq)
		got, err := l2.Read(sm.Seq)
		if err != nil || string(got.Body) != fmt.Sprintf("body-%d", sm.Seq) {
			t.Fatalf("steps %d: message %d corrupt: %v", steps, sm.Seq, err)
		}
		if ackBarrier[sm.Seq] {
			t.Fatalf("steps %d: message %d was acked before a confirmed publish, yet came back", steps, sm.Seq)
		}
	}
	for q := range confirmed {
		if !acked[q] && !seen[q] {
			t.Fatalf("steps %d torn %v: confirmed message %d lost", steps, torn, q)
		}
	}
}

func TestENOSPCFailsThePublishesAndKeepsTheStore(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	var full sync.Mutex
	diskFull := false
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, n int) (int, error) {
		full.Lock()
		defer full.Unlock()
		if diskFull && op == vfs.OpWrite {
			return n / 3, vfs.ErrNoSpace // a torn write
		}
		return 0, nil
	})
	st, l := openTest(t, f, 1<<20)
	r := newResults()
	for i := uint64(0); i < 10; i++ {
		_ = l.Append(i, msg(i), r, i)
	}
	r.wait(t, 10)
	full.Lock()
	diskFull = true
	full.Unlock()
	for i := uint64(10); i < 20; i++ {
		_ = l.Append(i, msg(i), r, i)
	}
	r.wait(t, 20)
	r.mu.Lock()
	for i := uint64(10); i < 20; i++ {
		if !errors.Is(r.errs[i], vfs.ErrNoSpace) {
			t.Errorf("publish %d during ENOSPC: %v", i, r.errs[i])
		}
	}
	r.mu.Unlock()
	full.Lock()
	diskFull = false
	full.Unlock()
	for i := uint64(20); i < 25; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal("log unusable after space returned:", err)
		}
	}
	r.wait(t, 25)
	_ = st.Close()
	st2, l2 := openTest(t, m, 1<<20)
	defer st2.Close()
	var got []uint64
	for _, sm := range l2.Recovered() {
		got = append(got, sm.Seq)
	}
	want := []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 23, 24}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

func TestEIOOnFsyncFailsTheLog(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	var broken bool
	var mu sync.Mutex
	f := vfs.NewFaulty(m, func(op vfs.Op, _ string, _ int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if broken && op == vfs.OpSync {
			return 0, vfs.ErrIO
		}
		return 0, nil
	})
	st, l := openTest(t, f, 1<<20)
	r := newResults()
	_ = l.Append(0, msg(0), r, 0)
	r.wait(t, 1)
	mu.Lock()
	broken = true
	mu.Unlock()
	_ = l.Append(1, msg(1), r, 1)
	r.wait(t, 2)
	if !errors.Is(r.errs[1], vfs.ErrIO) {
		t.Fatalf("fsync EIO not reported: %v", r.errs)
	}
	if err := l.Append(2, msg(2), r, 2); !errors.Is(err, vfs.ErrIO) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	_ = st.Close()
	st2, l2 := openTest(t, m, 1<<20)
	defer st2.Close()
	if rec := l2.Recovered(); len(rec) == 0 || rec[0].Seq != 0 {
		t.Fatalf("the message stored before the failure is gone: %+v", rec)
	}
}

// The definitions document is kept as given; a fresh node has none.
func TestDefinitionsDocumentRoundTrip(t *testing.T) {
	t.Parallel()
	st, err := Open(vfs.NewMem(), "/d", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.LoadDefinitions(); got != nil || err != nil {
		t.Fatalf("a fresh store has definitions %q, %v", got, err)
	}
	doc := []byte(`{"version":1}`)
	if err := st.SaveDefinitions(doc); err != nil {
		t.Fatal(err)
	}
	if got, err := st.LoadDefinitions(); string(got) != string(doc) || err != nil {
		t.Fatalf("got %q, %v", got, err)
	}
}

func FuzzSegmentRecovery(f *testing.F) {
	valid := appendRecord(nil, recMessage, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(valid)
	f.Add(appendSeqRecord(nil, recAck, []uint64{1, 2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, content []byte) {
		m := vfs.NewMem()
		_ = m.MkdirAll("/data/queues/q")
		file, _ := m.Create(segmentName("/data/queues/q", 0))
		_, _ = file.Write(content)
		st, err := Open(m, "/data", Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		l, err := st.QueueLog("q")
		if err != nil {
			return // an unreadable log is refused, not a panic
		}
		for _, sm := range l.Recovered() {
			if _, err := l.Read(sm.Seq); err != nil {
				t.Fatalf("recovered message %d does not read back: %v", sm.Seq, err)
			}
		}
		// The log stays writable after recovery.
		r := newResults()
		if err := l.Append(1<<40, msg(1), r, 1); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPowerLossBeforeEveryFileOperation cuts the power (keeps only what
// was fsynced, with torn tails) just before the k-th file-system operation
// of a workload that rolls segments, acks and deletes them, for every k.
// Each time, recovery must hold every message confirmed before the cut,
// in order and intact, and no message that was never appended.
func TestPowerLossBeforeEveryFileOperation(t *testing.T) {
	t.Parallel()
	for k := 1; ; k++ {
		if !powerLossAt(t, k) {
			t.Logf("power cut before each of %d file operations", k-1)
			if k < 20 {
				t.Fatalf("the workload made only %d file operations", k)
			}
			return
		}
	}
}

// powerLossAt runs the workload, cutting power before operation k; it
// reports false when the workload finished before reaching operation k.
func powerLossAt(t *testing.T, k int) bool {
	t.Helper()
	m := vfs.NewCrashable()
	r := newResults()
	var mu sync.Mutex
	ops := 0
	var snapshot *vfs.MemFS
	var confirmedAtCut map[uint64]bool
	var ackedAtCut map[uint64]bool
	acked := map[uint64]bool{}
	f := vfs.NewFaulty(m, func(vfs.Op, string, int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		ops++
		if ops == k && snapshot == nil {
			snapshot = m.Crash(func(string, int) int { return k % 7 * 13 })
			r.mu.Lock()
			confirmedAtCut = map[uint64]bool{}
			for q := range r.ok {
				confirmedAtCut[q] = true
			}
			r.mu.Unlock()
			ackedAtCut = map[uint64]bool{}
			for q := range acked {
				ackedAtCut[q] = true
			}
		}
		return 0, nil
	})
	st, l := openTest(t, f, 700)
	const n = 40
	for i := uint64(0); i < n; i++ {
		if err := l.Append(i, msg(i), r, i); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			r.wait(t, int(i)+1)
			for q := i - 4; q <= i-2; q++ { // ack most of each group of five
				mu.Lock()
				acked[q] = true
				mu.Unlock()
				l.Ack(q)
			}
		}
	}
	r.wait(t, n)
	_ = st.Close()
	mu.Lock()
	defer mu.Unlock()
	if snapshot == nil {
		return false
	}
	st2, l2 := openTest(t, snapshot, 700)
	defer st2.Close()
	seen := map[uint64]bool{}
	last := int64(-1)
	for _, sm := range l2.Recovered() {
		if int64(sm.Seq) <= last || sm.Seq >= n {
			t.Fatalf("cut before op %d: seq %d out of order or unknown", k, sm.Seq)
		}
		last = int64(sm.Seq)
		seen[sm.Seq] = true
		got, err := l2.Read(sm.Seq)
		if err != nil || string(got.Body) != fmt.Sprintf("body-%d", sm.Seq) {
			t.Fatalf("cut before op %d: message %d corrupt: %v", k, sm.Seq, err)
		}
	}
	for q := range confirmedAtCut {
		if !ackedAtCut[q] && !seen[q] {
			t.Fatalf("cut before op %d: confirmed message %d lost", k, q)
		}
	}
	// The recovered log accepts new messages after the highest it held.
	next := l2.NextSeq()
	if err := l2.Append(next, msg(next), r, next); err != nil {
		t.Fatalf("cut before op %d: append after recovery: %v", k, err)
	}
	return true
}
