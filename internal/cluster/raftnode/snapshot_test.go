package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// slowSnapStorage is a MemoryStorage whose CreateSnapshot waits for
// release: a snapshot whose WAL record and fsync take long.
type slowSnapStorage struct {
	*MemoryStorage
	entered chan uint64
	release chan struct{}
	created atomic.Uint64
}

func (s *slowSnapStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	select {
	case s.entered <- i:
	default: // the test no longer watches
	}
	<-s.release
	snap, err := s.MemoryStorage.CreateSnapshot(i, cs, data)
	if err == nil {
		s.created.Store(i)
	}
	return snap, err
}

// TestSnapshotIsRecordedOffTheGroupGoroutine: while a periodic snapshot
// is being recorded, the group goes on applying proposals; once it is
// durable the log is compacted behind it.
func TestSnapshotIsRecordedOffTheGroupGoroutine(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	ep := net.Endpoint(1)
	st := &slowSnapStorage{MemoryStorage: NewMemoryStorage(), entered: make(chan uint64, 4), release: make(chan struct{})}
	h := NewHost(HostConfig{
		ID: 1, Transport: ep, Clock: fc, Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
		SnapshotEntries: 5, SnapshotSlack: 2,
		NewStorage: func(uint64) Storage { return st },
	})
	ep.SetHandler(h)
	t.Cleanup(h.Close)
	g, err := h.Start(9, []NodeID{1}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	propose := func(i int) {
		t.Helper()
		if _, err := g.Propose(ctx, []byte(fmt.Sprint(i))); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	// On failure the snapshot must not stay stuck: Host.Close waits for it.
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(st.release) }) }
	t.Cleanup(release)
	i := 0
	for ; i < 6; i++ {
		propose(i)
	}
	var at uint64
	select {
	case at = <-st.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot started after 6 entries with SnapshotEntries 5")
	}
	// The snapshot is stuck in its storage: proposals still apply, and no
	// second snapshot starts beside it.
	for range 20 {
		propose(i)
		i++
	}
	select {
	case j := <-st.entered:
		t.Fatalf("a second snapshot (at %d) started while the one at %d was being recorded", j, at)
	default:
	}
	release()
	for range 2000 {
		if first, _ := st.FirstIndex(); st.created.Load() >= at && first > 1 {
			return
		}
		propose(i)
		i++
		time.Sleep(time.Millisecond)
	}
	first, _ := st.FirstIndex()
	t.Fatalf("snapshot at %d: created %d, log starts at %d", at, st.created.Load(), first)
}
