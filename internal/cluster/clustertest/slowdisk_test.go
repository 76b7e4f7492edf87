package clustertest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestFollowerWithAHungFsyncCausesNoElection: a follower whose WAL fsync
// hangs for three election timeouts — its leader and the other follower
// healthy, heartbeats arriving every tick — holds no election and keeps
// its leader once the disk returns; the leader stays, in the same term,
// and the follower catches up. Regression: the follower's group
// goroutine, blocked on its save, stepped the queued heartbeats only
// after it, then ran a burst of twenty ticks and stood for election with
// no node failing (the benchmark's nacks without a fault).
//
// Time is driven by hand: each tick waits until the follower's node has
// received the leader's heartbeat of that tick, so the test waits on
// events, not on the machine's speed.
func TestFollowerWithAHungFsyncCausesNoElection(t *testing.T) {
	var ws *WALStorage
	c := New(t, 3, walOptions(t, &ws))
	leader := c.WaitLeader(1, nil, 30*time.Second)
	c.PauseTime()
	var follower NodeID
	for _, id := range c.IDs() {
		if id != leader {
			follower = id
			break
		}
	}
	terms := c.CheckElections()
	term := c.Group(leader, 1).Status().Term
	preVotes := c.Host(follower).Stats().PreVotes

	var mu sync.Mutex
	hung := 0
	release := make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(open) // before the cluster's Close (cleanups run last first): a failure must not leave the WAL hung
	ws.SetInjector(follower, func(op vfs.Op, _ string, _ int) (int, error) {
		if op != vfs.OpSync {
			return 0, nil
		}
		mu.Lock()
		hung++
		mu.Unlock()
		<-release
		return 0, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Propose(ctx, leader, 1, "while the disk hangs"); err != nil {
		t.Fatal(err) // the leader and the other follower commit it
	}
	if !c.Eventually(10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return hung > 0 }) {
		t.Fatal("the follower's WAL never reached an fsync")
	}
	tick := func() {
		t.Helper()
		before := c.Host(follower).Stats().MessagesReceived
		c.Clock.Advance(100 * time.Millisecond)
		if !c.Eventually(10*time.Second, func() bool { return c.Host(follower).Stats().MessagesReceived > before }) {
			t.Fatal("the leader's heartbeats stopped reaching the follower")
		}
	}
	for range 30 { // three election timeouts
		tick()
	}
	ws.SetInjector(follower, nil)
	open()
	done := make(chan error, 1)
	go func() { done <- c.Propose(ctx, leader, 1, "after") }()
	// Catching up, a tick need not bring the follower a message (the
	// group may be between the released fsync and the proposal, or quiet
	// for a moment): only the bound on ticks is asserted here.
	for i := 0; !slices.Contains(c.SM(follower, 1).Values(), "after"); i++ {
		if i == 300 {
			t.Fatalf("the follower did not catch up: %s", c.describe(1))
		}
		before := c.Host(follower).Stats().MessagesReceived
		c.Clock.Advance(100 * time.Millisecond)
		c.Eventually(200*time.Millisecond, func() bool {
			return c.Host(follower).Stats().MessagesReceived > before || slices.Contains(c.SM(follower, 1).Values(), "after")
		})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.CheckNoDivergence(1)

	if n := c.Host(follower).Stats().PreVotes; n != preVotes {
		t.Errorf("the follower with the hung disk stood for election %d times", n-preVotes)
	}
	if n := c.CheckElections(); n != terms {
		t.Errorf("%d terms had a leader after the hang, %d before", n, terms)
	}
	if st := c.Group(leader, 1).Status(); st.Leader != leader || st.Term != term {
		t.Errorf("leader %d in term %d, want %d in term %d", st.Leader, st.Term, leader, term)
	}
}
