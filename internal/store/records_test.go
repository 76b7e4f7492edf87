package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

func openRecords(t *testing.T, fsys vfs.FS, segSize int64) (*Store, *RecordLog, map[string]string) {
	t.Helper()
	st, err := Open(fsys, "/data", Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	r, recs, err := st.recordLog("retained", segSize)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rec := range recs {
		if _, dup := got[rec.Key]; dup {
			t.Fatalf("key %q recovered twice", rec.Key)
		}
		got[rec.Key] = string(rec.Msg.Body)
	}
	return st, r, got
}

// TestRecordLogKeepsTheLastMessagePerKey: replacing and removing keys
// survives a restart, and recovery returns records oldest first.
func TestRecordLogKeepsTheLastMessagePerKey(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, r, got := openRecords(t, m, 1<<20)
	if len(got) != 0 {
		t.Fatal(got)
	}
	res := newResults()
	put := func(k string, i uint64) {
		if err := r.Put(k, msg(i), res, i); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 1)
	put("b", 2)
	put("a", 3)
	r.Remove("b")
	put("c", 4)
	res.wait(t, 4)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := Open(m, "/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	_, recs, err := st2.RecordLog("retained")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Key != "a" || string(recs[0].Msg.Body) != "body-3" ||
		recs[1].Key != "c" || string(recs[1].Msg.Body) != "body-4" || recs[1].Msg.Props.Headers["i"] != int64(4) {
		t.Fatalf("recovered %+v", recs)
	}
}

// TestRecordLogCompactsPinnedSegments: one key set once and many others
// replaced often; the long-lived record is moved forward so old segments
// go, and the log stays a few segments long.
func TestRecordLogCompactsPinnedSegments(t *testing.T) {
	t.Parallel()
	m := vfs.NewMem()
	st, r, _ := openRecords(t, m, 1024)
	res := newResults()
	if err := r.Put("forever", msg(0), res, 0); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := uint64(1); i <= n; i++ {
		if err := r.Put(fmt.Sprint("k", i%5), msg(i), res, i); err != nil {
			t.Fatal(err)
		}
	}
	res.wait(t, n+1)
	// Compaction follows the fsyncs that acknowledge replaced records.
	segs := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		r.q.mu.Lock()
		segs = len(r.q.segs)
		r.q.mu.Unlock()
		if segs <= recordCompactSegments+1 {
			break
		}
	}
	if segs > recordCompactSegments+1 {
		t.Fatalf("%d segments after %d replacements of 5 keys with 1 KiB segments", segs, n)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, got := openRecords(t, m, 1024)
	want := map[string]string{"forever": "body-0"}
	for i := uint64(n - 4); i <= n; i++ {
		want[fmt.Sprint("k", i%5)] = fmt.Sprint("body-", i)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// TestRecordLogCrashAtEveryStep runs puts and removes over a few keys with
// small segments (so segments roll and compaction runs), crashes after
// each step keeping only fsynced data (with and without torn tails) and
// recovers: every key holds the value of its last confirmed put or of a
// later operation, never an older or unknown one, and the recovered log
// takes new records.
func TestRecordLogCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	for step := 1; step <= 80; step += 3 {
		for _, torn := range []bool{false, true} {
			t.Run(fmt.Sprint(step, torn), func(t *testing.T) { crashRecordsAt(t, step, torn) })
		}
	}
}

type recordOp struct {
	key, val string // val "" is a remove
	token    uint64 // puts: the completion token
}

func crashRecordsAt(t *testing.T, steps int, torn bool) {
	m := vfs.NewCrashable()
	_, r, _ := openRecords(t, m, 400)
	res := newResults()
	rng := rand.New(rand.NewPCG(uint64(steps), 11))
	var ops []recordOp
	puts := 0
	for i := range steps {
		k := fmt.Sprint("key", rng.IntN(4))
		if rng.IntN(5) == 0 {
			r.Remove(k)
			ops = append(ops, recordOp{key: k})
			continue
		}
		tok := uint64(i)
		if err := r.Put(k, msg(tok), res, tok); err != nil {
			t.Fatal(err)
		}
		puts++
		ops = append(ops, recordOp{key: k, val: fmt.Sprint("body-", tok), token: tok})
		if rng.IntN(3) == 0 {
			res.wait(t, puts) // sometimes let the group commit catch up
		}
	}
	res.mu.Lock()
	confirmed := map[uint64]bool{}
	for q := range res.ok {
		confirmed[q] = true
	}
	res.mu.Unlock()
	var after *vfs.MemFS
	if torn {
		after = m.Crash(func(_ string, unsynced int) int { return unsynced / 2 })
	} else {
		after = m.Crash(nil)
	}
	st2, r2, got := openRecords(t, after, 400)
	defer st2.Close()
	for _, k := range []string{"key0", "key1", "key2", "key3"} {
		// The values allowed: absent if no put of k was confirmed, and the
		// value of the last confirmed put of k or of any later operation.
		allowed := map[string]bool{}
		last := -1
		for i, op := range ops {
			if op.key == k && op.val != "" && confirmed[op.token] {
				last = i
			}
		}
		if last < 0 {
			allowed[""] = true
		}
		for i, op := range ops {
			if op.key == k && i >= max(last, 0) {
				allowed[op.val] = true
			}
		}
		if v := got[k]; !allowed[v] {
			t.Fatalf("after %d steps (torn %v): %s recovered as %q, allowed %v", steps, torn, k, v, allowed)
		}
		delete(got, k)
	}
	if len(got) != 0 {
		t.Fatalf("unknown keys recovered: %v", got)
	}
	res2 := newResults()
	if err := r2.Put("key0", msg(999), res2, 999); err != nil {
		t.Fatal(err)
	}
	res2.wait(t, 1)
	if len(res2.errs) != 0 {
		t.Fatal(res2.errs)
	}
}

// TestRecordLogFullDisk: a put whose write fails with ENOSPC is refused
// (error or failed completion), is not recovered, and the log works again
// once space is back.
func TestRecordLogFullDisk(t *testing.T) {
	t.Parallel()
	m := vfs.NewCrashable()
	faults := newBlockingFaults()
	f := vfs.NewFaulty(m, faults.inject)
	_, r, _ := openRecords(t, f, 1<<20)
	res := newResults()
	if err := r.Put("a", msg(1), res, 1); err != nil {
		t.Fatal(err)
	}
	res.wait(t, 1)
	faults.set("records", "")
	failed := r.Put("a", msg(2), res, 2) != nil
	if !failed {
		res.wait(t, 2)
		res.mu.Lock()
		failed = res.errs[2] != nil
		res.mu.Unlock()
	}
	if !failed {
		t.Fatal("a put whose write failed with ENOSPC was confirmed")
	}
	faults.set("", "")
	if err := r.Put("b", msg(3), res, 3); err != nil {
		t.Fatal(err)
	}
	testkitWaitOK(t, res, 3)
	_, _, got := openRecords(t, m.Crash(nil), 1<<20)
	if got["a"] != "body-1" || got["b"] != "body-3" || len(got) != 2 {
		t.Fatalf("recovered %v", got)
	}
}

func testkitWaitOK(t *testing.T, res *results, token uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		res.mu.Lock()
		ok, err := res.ok[token], res.errs[token]
		res.mu.Unlock()
		if err != nil {
			t.Fatalf("token %d: %v", token, err)
		}
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("token %d never confirmed", token)
}

// batchOnly is a BatchCompletion that, like an AMQP channel, answers only
// at the end of a batch.
type batchOnly struct {
	mu      sync.Mutex
	pending []uint64
	ended   chan uint64
}

func (b *batchOnly) Durable(token uint64, err error) {
	b.mu.Lock()
	if err == nil {
		b.pending = append(b.pending, token)
	}
	b.mu.Unlock()
}

func (b *batchOnly) DurableBatchEnd() {
	b.mu.Lock()
	for _, q := range b.pending {
		b.ended <- q
	}
	b.pending = nil
	b.mu.Unlock()
}

// TestRecordLogEndsBatchesOfBatchCompletions: a publisher whose
// completion answers per group commit (AMQP confirms) gets its answer for
// a record put (the delayed-message exchange's confirms once waited
// forever: the record log's own completion did not pass the batch end on).
func TestRecordLogEndsBatchesOfBatchCompletions(t *testing.T) {
	t.Parallel()
	_, r, _ := openRecords(t, vfs.NewMem(), 1<<20)
	b := &batchOnly{ended: make(chan uint64, 2)}
	if err := r.Put("a", msg(1), b, 7); err != nil {
		t.Fatal(err)
	}
	select {
	case tok := <-b.ended:
		if tok != 7 {
			t.Fatalf("token %d", tok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the batch completion was never ended")
	}
}
