package store

import (
	"errors"
	"sync"
	"testing"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// Records whose write failed are cut away, reported to the queue through
// OnRefused, and read back as message.ErrNotStored — not as a message lost
// from the log.
func TestRefusedRecordsAreReportedAndReadAsNotStored(t *testing.T) {
	t.Parallel()
	faults := newBlockingFaults()
	st, err := Open(vfs.NewFaulty(vfs.NewMem(), faults.inject), "/data", Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.QueueLog("q")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ranges [][2]uint64
	l.OnRefused(func(first, last uint64) {
		mu.Lock()
		ranges = append(ranges, [2]uint64{first, last})
		mu.Unlock()
	})
	r := newResults()
	if err := l.Append(0, msg(0), r, 0); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)
	faults.set("q", "")
	for seq := uint64(1); seq <= 3; seq++ {
		if err := l.Append(seq, msg(seq), r, seq); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(t, 4)
	for seq := uint64(1); seq <= 3; seq++ {
		if r.errs[seq] == nil {
			t.Fatalf("message %d confirmed although its write failed", seq)
		}
		if _, err := l.Read(seq); !errors.Is(err, message.ErrNotStored) {
			t.Fatalf("reading refused message %d: %v, want ErrNotStored", seq, err)
		}
	}
	if m, err := l.Read(0); err != nil || string(m.Body) != "body-0" {
		t.Fatalf("the stored message before the failure: %v %v", m, err)
	}
	mu.Lock()
	defer mu.Unlock()
	covered := func(seq uint64) bool {
		for _, rg := range ranges {
			if seq >= rg[0] && seq <= rg[1] {
				return true
			}
		}
		return false
	}
	for seq := uint64(1); seq <= 3; seq++ {
		if !covered(seq) {
			t.Fatalf("refused message %d not reported (ranges %v)", seq, ranges)
		}
	}
	if covered(0) {
		t.Fatalf("the stored message reported refused (ranges %v)", ranges)
	}
}
