package chaos

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// record frames a payload as the store does (the CRC is not checked here).
func record(typ byte, payload string) []byte {
	b := make([]byte, recordHeader, recordHeader+1+len(payload))
	binary.LittleEndian.PutUint32(b, uint32(1+len(payload)))
	b = append(b, typ)
	return append(b, payload...)
}

func writeSeg(t *testing.T, dir, queue, name string, recs ...[]byte) string {
	t.Helper()
	d := filepath.Join(dir, "queues", queue)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, r := range recs {
		b = append(b, r...)
	}
	p := filepath.Join(d, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func size(t *testing.T, p string) int {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return int(st.Size())
}

func TestTornTailCutsOnlyTheLastRecord(t *testing.T) {
	dir := t.TempDir()
	r1, r2 := record(1, string(body("cq1-1"))), record(1, string(body("cq1-2")))
	writeSeg(t, dir, "q1", "00000000000000000000.seg", record(1, "old"))
	p := writeSeg(t, dir, "q1", "00000000000000000005.seg", r1, r2)
	for _, k := range []int{3, 100000} {
		if err := os.WriteFile(p, append(append([]byte(nil), r1...), r2...), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := tearTailIn(dir, Fault{Kind: FaultTornTail, TornBytes: k})
		if err != nil {
			t.Fatal(err)
		}
		want := len(r1) + len(r2) - min(k, len(r2)-1)
		if got := size(t, p); got != want || res.Segment != p {
			t.Fatalf("k=%d: %s is %d bytes, want %d (%+v)", k, res.Segment, got, want, res)
		}
		if len(res.Destroyed) != 1 || res.Destroyed[0] != "cq1-2" {
			t.Fatalf("k=%d: destroyed %v, want [cq1-2]", k, res.Destroyed)
		}
	}
}

func TestTornTailSparesStreamsAndAppendsGarbage(t *testing.T) {
	dir := t.TempDir()
	st := writeSeg(t, dir, "s", "00000000000000000000.seg", record(1, string(body("st1-1"))))
	// The stream's segment is the newest, so garbage goes there.
	old := time.Now().Add(-time.Minute)
	q := writeSeg(t, dir, "q", "00000000000000000000.seg", record(2, "ack"))
	if err := os.Chtimes(q, old, old); err != nil {
		t.Fatal(err)
	}
	stSize, qSize := size(t, st), size(t, q)

	// A cut never touches the stream: it tears the other log.
	res, err := tearTailIn(dir, Fault{Kind: FaultTornTail, TornBytes: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segment != q || size(t, q) != qSize-2 || size(t, st) != stSize || len(res.Destroyed) != 0 {
		t.Fatalf("cut %+v: q %d→%d, stream %d→%d", res, qSize, size(t, q), stSize, size(t, st))
	}
	if err := os.Chtimes(q, old, old); err != nil { // the cut made it the newest
		t.Fatal(err)
	}
	res, err = tearTailIn(dir, Fault{Kind: FaultTornTail, TornBytes: 7, Garbage: true, AtMS: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segment != st || size(t, st) != stSize+7 {
		t.Fatalf("garbage %+v: stream %d→%d", res, stSize, size(t, st))
	}
	// With only a stream left to cut, it appends garbage instead.
	if err := os.RemoveAll(filepath.Join(dir, "queues", "q")); err != nil {
		t.Fatal(err)
	}
	res, err = tearTailIn(dir, Fault{Kind: FaultTornTail, TornBytes: 3})
	if err != nil || res.Segment != st || size(t, st) != stSize+10 {
		t.Fatalf("stream only: %+v %v, size %d", res, err, size(t, st))
	}
}

func TestTornTailWithNothingToTear(t *testing.T) {
	res, err := tearTailIn(t.TempDir(), Fault{Kind: FaultTornTail, TornBytes: 3})
	if err != nil || res.Segment != "" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestBodyRoundTrip(t *testing.T) {
	v, h, problem := parseBody(body("cq1-42"))
	if v != "cq1-42" || h == "" || problem != "" {
		t.Fatalf("%q %q %q", v, h, problem)
	}
	if v, _, problem := parseBody([]byte("hello")); v != "" || problem == "" {
		t.Fatalf("garbage parsed as %q", v)
	}
}

func TestTrackerForgetsDestroyedValues(t *testing.T) {
	tr := newTracker()
	tr.confirmed("q", "cq1-1")
	tr.confirmed("q", "cq1-2")
	tr.destroy([]string{"cq1-2", "cq1-3"})
	tr.confirmed("q", "cq1-3") // a confirm read after the fault
	if n := tr.outstanding(); n != 1 {
		t.Fatalf("outstanding %d, want 1 (cq1-1)", n)
	}
	tr.got("q", "cq1-1")
	if n := tr.outstanding(); n != 0 {
		t.Fatalf("outstanding %d after delivery", n)
	}
}

func TestTrackerTimesTheFirstConfirmAfterAHeal(t *testing.T) {
	trk := newTracker()
	trk.confirmed("q", "p-1")
	heal := now()
	trk.watch(heal)
	if got := trk.firstConfirmAfter(); got != 0 {
		t.Fatalf("a confirm before the heal counted: %d", got)
	}
	trk.confirmed("q", "p-2")
	first := trk.firstConfirmAfter()
	if first <= heal {
		t.Fatalf("first confirm %d, heal %d", first, heal)
	}
	trk.confirmed("q", "p-3")
	if got := trk.firstConfirmAfter(); got != first {
		t.Fatalf("a later confirm moved the first: %d, was %d", got, first)
	}
	// A confirm between the heal and watch is taken as the first.
	heal = now()
	trk.confirmed("q", "p-4")
	trk.watch(heal)
	if got := trk.firstConfirmAfter(); got <= heal {
		t.Fatalf("the confirm before watch but after the heal was missed: %d", got)
	}
}
