package store

import (
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// A stream's offsets are dense: the offsets of a write that failed (ENOSPC)
// or whose fsync failed (EIO) are cut away and given to the next appends,
// so readers see no gap where publishes were refused — before and after a
// crash. Before AppendNext the refused offsets stayed holes (a chaos run
// saw offsets 628–633 skipped after a full disk).
func TestStreamOffsetsStayDenseAfterRefusedWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                string
		failWrite, failSync string
	}{
		{"write ENOSPC", "s1", ""},
		{"fsync EIO", "", "s1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			faults := newBlockingFaults()
			st, err := Open(vfs.NewFaulty(mem, faults.inject), "/data", Options{SegmentSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			l, err := st.StreamLog("s1", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			r := newResults()
			token := uint64(0)
			appendOne := func(want uint64, body uint64) {
				t.Helper()
				seq, err := l.AppendNext(msg(body), r, token)
				token++
				if err != nil {
					t.Fatalf("append of body %d: %v", body, err)
				}
				if seq != want {
					t.Fatalf("append of body %d at offset %d, want %d", body, seq, want)
				}
			}
			for i := uint64(0); i < 5; i++ {
				appendOne(i, i)
			}
			r.wait(t, 5)
			faults.set(tc.failWrite, tc.failSync)
			var accepted []uint64 // tokens of the appends the log took
			for i := uint64(100); i < 103; i++ {
				// Offsets from 5 on, then refused. Which ones depends on
				// timing: a write that fails before the next append has
				// already cut its offset away and handed it on (so 101 may
				// take 5 again); every one of them is past the durable end.
				// An append after a failed fsync may also be refused at
				// once (the log's cut back could not be made durable).
				seq, err := l.AppendNext(msg(i), r, token)
				if err == nil {
					accepted = append(accepted, token)
					if seq < 5 || seq > 5+i-100 {
						t.Fatalf("append of body %d at offset %d during the fault, want 5..%d", i, seq, 5+i-100)
					}
				}
				token++
			}
			r.wait(t, 5+len(accepted))
			for _, tok := range accepted {
				if r.errs[tok] == nil {
					t.Fatalf("publish %d confirmed although its write failed", tok)
				}
			}
			if d := l.DurableSeq(); d != 5 {
				t.Fatalf("durable end %d after the refused writes, want 5", d)
			}
			faults.set("", "")
			for i := uint64(5); i < 8; i++ {
				appendOne(i, 200+i) // the refused offsets are reused
			}
			r.wait(t, 5+len(accepted)+3)
			for tok := uint64(8); tok < 11; tok++ {
				if !r.ok[tok] {
					t.Fatalf("publish %d after the disk recovered: %v", tok, r.errs[tok])
				}
			}
			want := map[uint64]string{0: "body-0", 1: "body-1", 2: "body-2", 3: "body-3", 4: "body-4",
				5: "body-205", 6: "body-206", 7: "body-207"}
			check := func(l *QueueLog, when string) {
				t.Helper()
				if d := l.DurableSeq(); d != 8 {
					t.Fatalf("%s: durable end %d, want 8", when, d)
				}
				for off := uint64(0); off < 8; off++ {
					m, err := l.Read(off)
					if err != nil || string(m.Body) != want[off] {
						t.Fatalf("%s: offset %d: %v %v, want %s", when, off, m, err, want[off])
					}
				}
			}
			check(l, "before the crash")
			after := mem.Crash(nil)
			st2, err := Open(after, "/data", Options{SegmentSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = st2.Close() }()
			l2, err := st2.StreamLog("s1", 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			check(l2, "after a crash")
			if n := l2.NextSeq(); n != 8 {
				t.Fatalf("next offset after the crash %d, want 8", n)
			}
		})
	}
}
