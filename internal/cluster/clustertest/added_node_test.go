package clustertest

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestNodeAddedBeforeAnySnapshot: a node added to a group whose only
// snapshot is its bootstrap one (few entries, nothing compacted) starts
// empty and catches up. etcd raft refuses a snapshot whose configuration
// lacks the receiving node, so raftnode snapshots on every replica after
// a configuration change that adds one; without that the new replica
// rejected the leader's bootstrap snapshot forever.
func TestNodeAddedBeforeAnySnapshot(t *testing.T) {
	c := New(t, 3, Options{})
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "pre", 5)
	n4 := c.AddNode()
	if _, err := c.StartGroup(n4, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Group(leader, 1).AddLearner(ctx, n4); err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	acked = append(acked, proposeAll(t, c, leader, "post", 5)...)
	c.WaitApplied(1, nil, acked, wait)
	if s := c.Host(n4).Stats(); s.SnapshotsRestored == 0 {
		t.Fatalf("n4 caught up without a snapshot: %+v", s)
	}
	// The published status refreshes on the next tick.
	deadline := time.Now().Add(wait)
	for st := c.Group(n4, 1).Status(); !slices.Contains(st.Learners, n4); st = c.Group(n4, 1).Status() {
		if time.Now().After(deadline) {
			t.Fatalf("n4's own view of the configuration: voters %v learners %v", st.Voters, st.Learners)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.CheckNoDuplicates(1)
}
