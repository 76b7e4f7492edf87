package raftnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// failingSnapStorage is a MemoryStorage whose CreateSnapshot fails (as
// the WAL's did for a state over its record limit) until healed.
type failingSnapStorage struct {
	*MemoryStorage
	attempts atomic.Int64
	healed   atomic.Bool
}

func (s *failingSnapStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	s.attempts.Add(1)
	if !s.healed.Load() {
		return nil, errors.New("wal: record of 270000320 bytes exceeds the limit of 268435456")
	}
	return s.MemoryStorage.CreateSnapshot(i, cs, data)
}

// TestFailedSnapshotsBackOff (review7 F6): a snapshot that keeps failing
// is retried after exponentially more applied entries, not every
// SnapshotEntries/10 — each attempt encodes the whole state on the
// group's goroutine (hundreds of MB for a large quorum queue) only to
// fail again. The back-off is bounded: once the storage takes snapshots
// again, one is made within 64 times the first retry gap.
func TestFailedSnapshotsBackOff(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	ep := net.Endpoint(1)
	st := &failingSnapStorage{MemoryStorage: NewMemoryStorage()}
	logs := &syncBuffer{}
	h := NewHost(HostConfig{
		ID: 1, Transport: ep, Clock: fc, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		SnapshotEntries: 10, SnapshotBytes: 1 << 40,
		NewStorage: func(uint64) Storage { return st },
	})
	ep.SetHandler(h)
	t.Cleanup(h.Close)
	sm := &blobSM{blob: bytes.Repeat([]byte("s"), 1<<10)}
	g, err := h.Start(3, []NodeID{1}, nil, sm)
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 1000
	for i := range n {
		if _, err := g.Propose(ctx, []byte("x")); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	// Retry gaps 1, 2, 4 … 64 entries: about 6 + (1000-127)/64 ≈ 20
	// attempts. Without back-off it was one every entry (SnapshotEntries/10).
	if a := st.attempts.Load(); a == 0 || a > 30 {
		t.Fatalf("%d snapshot attempts over %d applied entries with SnapshotEntries 10, all failing: want 1 to 30", a, n)
	}
	sm.mu.Lock()
	encoded := sm.appends
	sm.mu.Unlock()
	if encoded > 31 {
		t.Fatalf("the state was encoded %d times for %d failing snapshots", encoded, st.attempts.Load())
	}
	t.Logf("%d failed snapshot attempts over %d entries", st.attempts.Load(), n)
	st.healed.Store(true)
	made := func() bool { s, _ := st.Snapshot(); return s.GetMetadata().GetIndex() > 1 }
	for i := 0; i < 200 && !made(); i++ {
		if _, err := g.Propose(ctx, []byte("y")); err != nil {
			t.Fatalf("proposal after healing %d: %v", i, err)
		}
	}
	for range 2000 { // the last may still be recorded off the goroutine
		if made() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if !made() {
		t.Fatalf("no snapshot within 200 entries once the storage took them again (%d attempts)", st.attempts.Load())
	}
}
