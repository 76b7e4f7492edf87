package raftnode

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// TestFollowerAFewEntriesBehindCatchesUpWithoutASnapshot: snapshots the
// bytes trigger keep almost no entries (since/10), so with large entries
// a leader used to compact away what a follower a few entries behind
// still needed, and sent it the whole state instead — at every snapshot,
// so a lagging follower might never catch up. The leader now keeps the
// entries back to such a follower's match.
func TestFollowerAFewEntriesBehindCatchesUpWithoutASnapshot(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	ids := []NodeID{1, 2, 3}
	hosts := map[NodeID]*Host{}
	groups := map[NodeID]*Group{}
	for _, id := range ids {
		ep := net.Endpoint(id)
		st := NewMemoryStorage()
		h := NewHost(HostConfig{
			ID: id, Transport: ep, Clock: fc,
			Logger:          slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			SnapshotEntries: 1000, SnapshotSlack: 100, SnapshotBytes: 2 << 10,
			NewStorage: func(uint64) Storage { return st },
		})
		ep.SetHandler(h)
		t.Cleanup(h.Close)
		hosts[id] = h
		g, err := h.Start(4, ids, nil, &countSM{})
		if err != nil {
			t.Fatal(err)
		}
		groups[id] = g
	}
	var leader, lagging NodeID
	tickUntil(t, fc, func() bool {
		for _, id := range ids {
			if groups[id].IsLeader() {
				leader = id
				return true
			}
		}
		return false
	})
	lagging = leader%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	payload := bytes.Repeat([]byte("x"), 300) // 7 entries make 2 KiB: a snapshot the bytes trigger, slack 0
	net.Cut(leader, lagging)
	for i := range 40 {
		if _, err := groups[leader].Propose(ctx, payload); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	if hosts[leader].Stats().SnapshotsCreated == 0 {
		t.Fatal("no snapshot while the follower lagged: the test does not exercise compaction")
	}
	net.Heal()
	want := groups[leader].Status().Applied
	tickUntil(t, fc, func() bool { return groups[lagging].Status().Applied >= want })
	if n := hosts[leader].Stats().SnapshotsSent; n != 0 {
		t.Fatalf("the leader sent %d snapshots to a follower 40 entries behind (slack 100)", n)
	}
}
