package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLiveSurvivesLeaderChangeAndCheckQuorum: a group's Live(node), which
// a quorum queue's leader asks before it takes back the unacked messages
// of a node's consumers, stays true for nodes that are up — right after a
// leader change and across CheckQuorum's resets of Raft's RecentActive —
// and turns false for a node that went down. Live used to be RecentActive
// on a ticking leader: a new leader, or any leader for the tick after each
// CheckQuorum, saw its followers inactive, and the queue returned the
// messages live consumers held, which were then delivered twice.
func TestLiveSurvivesLeaderChangeAndCheckQuorum(t *testing.T) {
	c := New(t, 3, Options{})
	const g = uint64(1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	notLive := func(leader NodeID) []string {
		var out []string
		gr := c.Group(leader, g)
		for _, id := range c.Up() {
			if !gr.Live(id) {
				out = append(out, fmt.Sprint(id))
			}
		}
		return out
	}
	leader := c.WaitLeader(g, nil, wait)
	// Keep the group ticking (a quiet group does not run CheckQuorum)
	// and sample Live on the leader over 4 election timeouts.
	for i := range 40 {
		if err := c.Propose(ctx, leader, g, fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if bad := notLive(leader); len(bad) > 0 {
				t.Fatalf("round %d: leader %d reports live nodes %v not live", i, leader, bad)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// Hand leadership over and look at once on the new leader.
	to := c.IDs()[0]
	if to == leader {
		to = c.IDs()[1]
	}
	if err := c.Group(leader, g).TransferLeadership(ctx, to); err != nil {
		t.Fatal(err)
	}
	if !c.Eventually(wait, func() bool { return c.Group(to, g).IsLeader() }) {
		t.Fatal("no transfer")
	}
	if bad := notLive(to); len(bad) > 0 {
		t.Fatalf("the new leader %d reports live nodes %v not live", to, bad)
	}
	// A node that went down is not live after an election timeout.
	var down NodeID
	for _, id := range c.IDs() {
		if id != to {
			down = id
			break
		}
	}
	c.Crash(down)
	if !c.Eventually(wait, func() bool { return !c.Group(to, g).Live(down) }) {
		t.Fatalf("node %d crashed and is still live for %d", down, to)
	}
}
