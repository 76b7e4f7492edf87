package store

import (
	"errors"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// TestCutDuringAnInFlightFsyncFailsItsCommit: while the committer's fsync
// of a message is in flight, an appender rolls the segment and its seal
// fsync fails, so the log is cut back to its last good end — removing the
// message. When the held fsync then succeeds, the message must not be
// confirmed: it is not on disk. (Found by review: it was confirmed, and
// read back as ErrNotStored.)
func TestCutDuringAnInFlightFsyncFailsItsCommit(t *testing.T) {
	t.Parallel()
	faults := newBlockingFaults()
	st, err := Open(vfs.NewFaulty(vfs.NewMem(), faults.inject), "/data", Options{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	l, err := st.QueueLog("cutlog")
	if err != nil {
		t.Fatal(err)
	}
	r := newResults()
	big := func(i uint64) *message.Message {
		m := msg(i)
		m.Body = make([]byte, 64<<10)
		return m
	}
	faults.mu.Lock()
	faults.holdSync = "cutlog"
	faults.mu.Unlock()
	if err := l.Append(0, big(0), r, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-faults.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the committer's fsync never started")
	}
	// Fill the segment until a roll seals it; the seal's fsync fails.
	faults.set("", "cutlog")
	var appendErr error
	for i := uint64(1); i < 40 && appendErr == nil; i++ {
		appendErr = l.Append(i, big(i), nil, 0)
	}
	if appendErr == nil {
		t.Fatal("no append failed: the segment never rolled")
	}
	faults.set("", "")
	if _, err := l.Read(0); !errors.Is(err, message.ErrNotStored) {
		t.Fatalf("message 0 after the cut: %v, want ErrNotStored", err)
	}
	close(faults.release)
	r.wait(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ok[0] {
		t.Fatal("message 0 confirmed although its record was cut away")
	}
	if r.errs[0] == nil {
		t.Fatal("message 0 neither confirmed nor failed")
	}
}
