package raftnode

import (
	"context"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
)

// TestProposalsDoNotWakeASaveWait: proposals made while the group waits
// for its save do not wake that wait (it cannot take them; under load a
// publisher's every message woke it), and they all go at the next turn.
func TestProposalsDoNotWakeASaveWait(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	hosts, stores := gatedHosts(t, fc, 1, nil)
	g, err := hosts[1].Start(6, []NodeID{1}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	tickUntil(t, fc, g.IsLeader)
	wakes := func() uint64 {
		ch := make(chan uint64, 1)
		if !g.submit(func() { ch <- g.saveWakes }) {
			t.Fatal("group closed")
		}
		return <-ch
	}
	before := wakes()
	stores[1].setHold()
	const n = 50
	errs := make(chan error, n+1)
	done := func(_ any, err error) { errs <- err }
	g.ProposeAsync([]byte("first"), done)
	if !waitUntil(10*time.Second, func() bool { return stores[1].waiting() > 0 }) {
		t.Fatal("the first proposal's save never came")
	}
	for range n {
		g.ProposeAsync([]byte("x"), done)
	}
	// Give a wake-up time to happen (it would be at once): none may.
	time.Sleep(100 * time.Millisecond)
	stores[1].release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range n + 1 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("proposals not applied after the save was released")
		}
	}
	if w := wakes() - before; w != 0 {
		t.Fatalf("the save's wait was woken %d times by %d proposals, want 0", w, n)
	}
}
