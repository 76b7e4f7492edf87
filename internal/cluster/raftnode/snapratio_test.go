package raftnode

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// blobSM is a state machine whose state is a fixed blob: its snapshot is
// len(blob) bytes however little was applied. It appends its snapshot
// (SnapshotAppender) and counts how it was asked.
type blobSM struct {
	mu              sync.Mutex
	blob            []byte
	appends, copies int
	restored        []byte
}

func (s *blobSM) Apply(uint64, []byte) any { return nil }
func (s *blobSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copies++
	return bytes.Clone(s.blob), nil
}
func (s *blobSM) AppendSnapshot(dst []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends++
	return append(dst, s.blob...), nil
}
func (s *blobSM) Restore(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restored = bytes.Clone(b)
	return nil
}
func (s *blobSM) LeaderChanged(uint64, bool) {}

// TestSnapshotsWaitForBytesWorthTheirSize: with SnapshotBytes far below
// the state's size, the bytes trigger waits for snapshotRatio times the
// last snapshot's size, so a large state is not copied again every
// SnapshotBytes; the state machine appends its snapshot behind the
// group's version byte, and a restart restores exactly its bytes.
func TestSnapshotsWaitForBytesWorthTheirSize(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net := memnet.New(fc, 1)
	st := NewMemoryStorage()
	start := func(sm StateMachine) (*Host, *Group) {
		ep := net.Endpoint(1)
		h := NewHost(HostConfig{
			ID: 1, Transport: ep, Clock: fc, Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			SnapshotEntries: 1 << 40, SnapshotBytes: 1 << 10,
			NewStorage: func(uint64) Storage { return st },
		})
		ep.SetHandler(h)
		g, err := h.Start(7, []NodeID{1}, nil, sm)
		if err != nil {
			t.Fatal(err)
		}
		return h, g
	}
	sm := &blobSM{blob: bytes.Repeat([]byte("s"), 4<<10)}
	h, g := start(sm)
	tickUntil(t, fc, g.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	payload := bytes.Repeat([]byte("p"), 100)
	const n = 400 // 40 KB applied: 40 snapshots at SnapshotBytes alone
	for i := range n {
		if _, err := g.Propose(ctx, payload); err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
	// The last snapshot may still be recorded off the group's goroutine.
	var made uint64
	for range 2000 {
		if made = h.Stats().SnapshotsCreated; made > 0 {
			if snap, _ := st.Snapshot(); snap.GetMetadata().GetIndex() > 1 {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	// The first after 1 KiB, then one per 16 KiB (4 × 4 KiB) at most.
	if made == 0 || made > 1+n*100/(snapshotRatio*4<<10)+1 {
		t.Fatalf("%d snapshots of a 4 KiB state for %d bytes applied with SnapshotBytes 1 KiB: want 1 to %d",
			made, n*100, 2+n*100/(snapshotRatio*4<<10))
	}
	sm.mu.Lock()
	appends, copies := sm.appends, sm.copies
	sm.mu.Unlock()
	if appends == 0 || copies != 0 {
		t.Fatalf("the group asked AppendSnapshot %d times and Snapshot %d times: want only AppendSnapshot", appends, copies)
	}
	snap, err := st.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if data, ok, err := unwrapSnapshot(snap.GetData()); err != nil || !ok || !bytes.Equal(data, sm.blob) {
		t.Fatalf("stored snapshot: ok %v err %v, %d bytes, want the version byte and the %d-byte state", ok, err, len(data), len(sm.blob))
	}
	h.Close()
	again := &blobSM{}
	h2, _ := start(again)
	defer h2.Close()
	again.mu.Lock()
	defer again.mu.Unlock()
	if !bytes.Equal(again.restored, sm.blob) {
		t.Fatalf("restart restored %d bytes, want the %d-byte state", len(again.restored), len(sm.blob))
	}
}
