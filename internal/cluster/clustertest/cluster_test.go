package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const wait = 20 * time.Second // real-time bound of every wait; tests finish far sooner

func TestElectionOneLeaderPerTerm(t *testing.T) { eachStorage(t, testElectionOneLeaderPerTerm) }

func testElectionOneLeaderPerTerm(t *testing.T, o Options) {
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	if n := c.CheckElections(); n < 1 {
		t.Fatalf("no leader recorded, though %d leads", leader)
	}
	// Force several more elections by isolating each new leader in turn.
	for range 3 {
		old := c.WaitLeader(1, nil, wait)
		c.Isolate(old)
		var rest []NodeID
		for _, id := range c.IDs() {
			if id != old {
				rest = append(rest, id)
			}
		}
		next := c.WaitLeader(1, rest, wait)
		if next == old {
			t.Fatalf("isolated node %d still leads the others", old)
		}
		c.Heal()
	}
	c.WaitLeader(1, nil, wait)
	if n := c.CheckElections(); n < 4 {
		t.Fatalf("%d terms with a leader recorded, want at least 4", n)
	}
	if s := c.Host(1).Stats(); s.LeaderChanges == 0 {
		t.Fatalf("stats count no leader change: %+v", s)
	}
}

// proposeAll proposes n values named prefix-i through node id (the
// group's leader when on is 0), retrying a failed proposal until it
// succeeds, and returns the values acknowledged.
func proposeAll(t *testing.T, c *Cluster, on NodeID, prefix string, n int) []string {
	t.Helper()
	var acked []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		ok := false
		for attempt := 0; attempt < 20 && !ok; attempt++ {
			id := on
			if id == 0 {
				id = c.WaitLeader(1, nil, wait)
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			err := c.Propose(ctx, id, 1, v)
			cancel()
			ok = err == nil
		}
		if !ok {
			t.Fatalf("value %s never committed", v)
		}
		acked = append(acked, v)
	}
	return acked
}

func TestReplication(t *testing.T) { eachStorage(t, testReplication) }

func testReplication(t *testing.T, o Options) {
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	var follower NodeID
	for _, id := range c.IDs() {
		if id != leader {
			follower = id
		}
	}
	acked := proposeAll(t, c, leader, "lead", 50)
	// Proposals on a follower are forwarded and complete there.
	acked = append(acked, proposeAll(t, c, follower, "follow", 50)...)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
	if got := len(c.CheckNoDivergence(1)); got != len(acked) {
		t.Fatalf("%d entries applied, want %d", got, len(acked))
	}
}

func TestReplicationWithFaults(t *testing.T) { eachStorage(t, testReplicationWithFaults) }

func testReplicationWithFaults(t *testing.T, o Options) {
	o.Seed = 7
	c := New(t, 3, o)
	c.WaitLeader(1, nil, wait)
	c.Net.Drop(0.1)
	c.Net.Duplicate(0.1)
	c.Net.Reorder(0.2, 300*time.Millisecond)
	c.Net.Delay(0, 50*time.Millisecond)
	acked := proposeAll(t, c, 0, "faulty", 100)
	c.Net.Calm()
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDivergence(1)
	if c.Net.Dropped.Load() == 0 || c.Net.Duplicated.Load() == 0 {
		t.Fatalf("faults did not happen: dropped %d duplicated %d", c.Net.Dropped.Load(), c.Net.Duplicated.Load())
	}
	c.CheckElections()
}
