package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

func smallSnapshots(cfg *raftnode.HostConfig) {
	cfg.SnapshotEntries = 20
	cfg.SnapshotSlack = 5
}

func TestSnapshotCatchUp(t *testing.T) { eachStorage(t, testSnapshotCatchUp) }

func testSnapshotCatchUp(t *testing.T, o Options) {
	o.Host = smallSnapshots
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	down := others(c, leader)[0]
	acked := proposeAll(t, c, leader, "early", 10)
	c.WaitApplied(1, nil, acked, wait)
	c.Crash(down)
	acked = append(acked, proposeAll(t, c, leader, "missed", 100)...)
	if s := c.Host(leader).Stats(); s.SnapshotsCreated == 0 {
		t.Fatalf("leader made no snapshot after 110 entries with SnapshotEntries 20: %+v", s)
	}
	c.Restart(down)
	c.WaitApplied(1, nil, acked, wait)
	if s := c.Host(down).Stats(); s.SnapshotsRestored == 0 {
		t.Fatalf("node %d caught up without a snapshot though the leader compacted its log: %+v", down, s)
	}
	acked = append(acked, proposeAll(t, c, 0, "late", 10)...)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)

	// A node restarts from its own snapshot and log.
	c.Crash(leader)
	c.Restart(leader)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
}

func TestRemoveNode(t *testing.T) { eachStorage(t, testRemoveNode) }

func testRemoveNode(t *testing.T, o Options) {
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "three", 10)
	c.WaitApplied(1, nil, acked, wait)
	gone := others(c, leader)[0]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Group(leader, 1).RemoveNode(ctx, gone); err != nil {
		t.Fatalf("RemoveNode(%d): %v", gone, err)
	}
	st := c.Group(leader, 1).Status()
	if slices.Contains(st.Voters, gone) {
		t.Fatalf("voters after removing %d: %v", gone, st.Voters)
	}
	had := len(c.SM(gone, 1).Items())
	rest := others(c, gone)
	more := proposeAll(t, c, leader, "two", 10)
	c.WaitApplied(1, rest, append(acked, more...), wait)
	// Let time pass: the removed replica gets no entry and disrupts no one.
	term := c.Group(leader, 1).Status().Term
	c.WaitTicks(100)
	if n := len(c.SM(gone, 1).Items()); n > had+1 {
		t.Fatalf("removed node %d applied %d entries after removal (had %d)", gone, n, had)
	}
	if c.SM(gone, 1).Contains(more[:1]) {
		t.Fatalf("removed node %d got an entry proposed after its removal", gone)
	}
	if now := c.Group(leader, 1).Status(); now.Term != term || !c.Group(leader, 1).IsLeader() {
		t.Fatalf("leadership moved after the removal: term %d→%d", term, now.Term)
	}
	if !c.Group(gone, 1).Status().Removed {
		t.Fatalf("node %d does not know it was removed", gone)
	}
	c.CheckNoDuplicates(1)

	// Restarted from its storage, the removed replica stays out: it
	// replays its own removal, gets no entry and disrupts no one.
	c.Crash(gone)
	c.Restart(gone)
	late := proposeAll(t, c, leader, "late", 5)
	c.WaitApplied(1, rest, append(append(acked, more...), late...), wait)
	c.WaitTicks(60)
	if g := c.Group(gone, 1); g == nil || !g.Status().Removed {
		t.Fatalf("restarted node %d does not know it was removed", gone)
	}
	if c.SM(gone, 1).Contains(more[:1]) || c.SM(gone, 1).Contains(late[:1]) {
		t.Fatalf("restarted removed node %d got an entry proposed after its removal", gone)
	}
	if now := c.Group(leader, 1).Status(); now.Term != term || !c.Group(leader, 1).IsLeader() || slices.Contains(now.Voters, gone) {
		t.Fatalf("after the removed node's restart: term %d→%d, leader %v, voters %v", term, now.Term, c.Group(leader, 1).IsLeader(), now.Voters)
	}
	c.CheckNoDuplicates(1)
	c.CheckElections()
}

func TestRemoveLeader(t *testing.T) { eachStorage(t, testRemoveLeader) }

func testRemoveLeader(t *testing.T, o Options) {
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "a", 5)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Group(leader, 1).RemoveNode(ctx, leader); err != nil {
		t.Fatalf("RemoveNode(leader %d): %v", leader, err)
	}
	rest := others(c, leader)
	next := c.WaitLeader(1, rest, wait)
	if next == leader {
		t.Fatal("removed leader still leads")
	}
	acked = append(acked, proposeAll(t, c, next, "b", 5)...)
	c.WaitApplied(1, rest, acked, wait)
	c.CheckElections()
}

func TestLearnerAddedThenPromoted(t *testing.T) { eachStorage(t, testLearnerAddedThenPromoted) }

func testLearnerAddedThenPromoted(t *testing.T, o Options) {
	o.Host = smallSnapshots
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "pre", 50)
	n4 := c.AddNode()
	if _, err := c.StartGroup(n4, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Membership changes may be asked of any replica: a follower forwards.
	follower := others(c, leader, n4)[0]
	if err := c.Group(follower, 1).AddLearner(ctx, n4); err != nil {
		t.Fatalf("AddLearner: %v", err)
	}
	acked = append(acked, proposeAll(t, c, leader, "learning", 10)...)
	c.WaitApplied(1, nil, acked, wait)
	st := c.Group(leader, 1).Status()
	if !slices.Contains(st.Learners, n4) || slices.Contains(st.Voters, n4) {
		t.Fatalf("after AddLearner: voters %v learners %v", st.Voters, st.Learners)
	}
	// A learner cannot take leadership.
	short, cancelShort := context.WithTimeout(context.Background(), 40*c.opts.TickEvery)
	err := c.Group(leader, 1).TransferLeadership(short, n4)
	cancelShort()
	if err == nil {
		t.Fatal("leadership moved to a learner")
	}
	if err := c.Group(leader, 1).Promote(ctx, n4); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	st = c.Group(leader, 1).Status()
	if slices.Contains(st.Learners, n4) || !slices.Contains(st.Voters, n4) {
		t.Fatalf("after Promote: voters %v learners %v", st.Voters, st.Learners)
	}
	// A voter can: this also proves the promotion took effect in Raft.
	if err := c.Group(leader, 1).TransferLeadership(ctx, n4); err != nil {
		t.Fatalf("TransferLeadership to the promoted node: %v", err)
	}
	c.WaitLeader(1, nil, wait)
	acked = append(acked, proposeAll(t, c, n4, "voter", 10)...)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
	c.CheckElections()
}

func TestTransferLeadership(t *testing.T) { eachStorage(t, testTransferLeadership) }

func testTransferLeadership(t *testing.T, o Options) {
	c := New(t, 3, o)
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "x", 10)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, to := range others(c, leader) {
		// Asked on a follower: it forwards the request to the leader.
		if err := c.Group(to, 1).TransferLeadership(ctx, to); err != nil {
			t.Fatalf("transfer to %d: %v", to, err)
		}
		if got := c.WaitLeader(1, nil, wait); got != to {
			t.Fatalf("leader %d after transfer to %d", got, to)
		}
		acked = append(acked, proposeAll(t, c, to, fmt.Sprintf("y%d", to), 5)...)
	}
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
	c.CheckElections()
}

// TestWALDeletedGroupStaysGone: a removed replica whose owner deletes it
// (Group.Delete: its WAL records the removal) is not restarted with its
// node — the WAL no longer lists the group — while the others serve on.
func TestWALDeletedGroupStaysGone(t *testing.T) {
	var ws *WALStorage
	c := New(t, 3, walOptions(t, &ws))
	leader := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, leader, "a", 10)
	gone := others(c, leader)[0]
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Group(leader, 1).RemoveNode(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if !c.Eventually(wait, func() bool { return c.Group(gone, 1).Status().Removed }) {
		t.Fatalf("node %d never learned of its removal", gone)
	}
	if err := c.Group(gone, 1).Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if gs := ws.WAL(gone).Groups(); len(gs) != 0 {
		t.Fatalf("WAL groups after Delete: %v", gs)
	}
	c.Crash(gone)
	c.Restart(gone)
	if gs := ws.WAL(gone).Groups(); len(gs) != 0 || c.Group(gone, 1) != nil {
		t.Fatalf("after a restart: WAL groups %v, group running %v", gs, c.Group(gone, 1) != nil)
	}
	acked = append(acked, proposeAll(t, c, leader, "b", 10)...)
	c.WaitApplied(1, others(c, gone), acked, wait)
	c.CheckNoDuplicates(1)
	c.CheckElections()
}
