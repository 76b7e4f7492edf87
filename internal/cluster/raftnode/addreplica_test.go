package raftnode

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// TestAddedReplicaCatchesUpBeforeNextSnapshot: a replica added to a group
// starts empty and can only be caught up by a snapshot (the log starts
// after the bootstrap snapshot). Raft refuses a snapshot whose
// configuration does not hold the recipient, so the snapshot the leader
// sends must be one taken after the change that added it; with the
// default SnapshotEntries (10,000) the next periodic snapshot is far off.
// Regression: the leader sent the bootstrap snapshot again and again (a
// hot loop: some 100,000 sends in 5 s) and the replica never caught up.
func TestAddedReplicaCatchesUpBeforeNextSnapshot(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	logs := &syncBuffer{}
	hosts := map[NodeID]*Host{}
	for _, id := range []NodeID{1, 2} {
		ep := net.Endpoint(id)
		stores := map[uint64]*MemoryStorage{}
		h := NewHost(HostConfig{
			ID: id, Transport: ep, Clock: fc,
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
			NewStorage: func(g uint64) Storage {
				if stores[g] == nil {
					stores[g] = NewMemoryStorage()
				}
				return stores[g]
			},
		})
		ep.SetHandler(h)
		t.Cleanup(h.Close)
		hosts[id] = h
	}
	sm1, sm2 := &countSM{}, &countSM{}
	g1, err := hosts[1].Start(7, []NodeID{1}, nil, sm1)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := hosts[2].Start(7, nil, nil, sm2) // empty: waits for a snapshot
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g1.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := g1.Propose(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if err := g1.AddLearner(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// The snapshot taken for the configuration change runs off the Raft
	// loop: proposed at once, "after" could land in it (CI saw n == 0).
	// The replica catches up from the snapshot first; "after" must then
	// reach it as an entry, not in another snapshot.
	caughtUp := g1.Status().Applied
	tickUntil(t, fc, func() bool { return g2.Status().Applied >= caughtUp })
	if _, err := g1.Propose(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	want := g1.Status().Applied
	tickUntil(t, fc, func() bool { return g2.Status().Applied >= want })
	sm2.mu.Lock()
	n := sm2.n
	sm2.mu.Unlock()
	if n != 1 { // "before" came in the snapshot; "after" applied
		t.Fatalf("the added replica applied %d entries after its snapshot, want 1", n)
	}
	if s := hosts[1].Stats(); s.SnapshotsSent > 3 {
		t.Fatalf("the leader sent %d snapshots to one new replica", s.SnapshotsSent)
	}
}
