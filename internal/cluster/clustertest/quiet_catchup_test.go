package clustertest

import (
	"testing"
)

// TestQuietLeaderCatchesUpARestartedFollower: the leader of a group is
// killed, the survivors take more entries, and the group then idles. The
// killed node, restarted, catches up without a further proposal, and once
// the group is quiet again its leader's Status shows every follower caught
// up, active and replicating: a quiet leader's Status is what the leader
// knew when it went quiet, not what it last published at a tick. It used to
// be the latter, so a leader that caught a follower up and went quiet in
// the same round showed it in "probe" at its old match for as long as the
// group stayed quiet; the node's rebalance reads that Status and did not
// hand leadership back (seen for over a minute in the failover benchmark,
// docs/performance.md).
func TestQuietLeaderCatchesUpARestartedFollower(t *testing.T) {
	eachStorage(t, testQuietLeaderCatchesUpARestartedFollower)
}

func testQuietLeaderCatchesUpARestartedFollower(t *testing.T, o Options) {
	c := New(t, 3, o)
	old := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, old, "before", 10)
	c.Crash(old)
	next := c.WaitLeader(1, nil, wait)
	acked = append(acked, proposeAll(t, c, next, "after", 10)...)
	// Idle past QuiesceTicks before the node comes back: the leader goes
	// quiet as soon as the follower matches, without another tick.
	c.WaitTicks(60)
	c.Restart(old)
	c.WaitApplied(1, nil, acked, wait) // no proposal since the restart
	leader := c.WaitLeader(1, nil, wait)
	g := c.Group(leader, 1)
	if !c.Eventually(wait, func() bool { return g.Status().Quiet }) {
		t.Fatalf("the group did not go quiet: %+v", g.Status())
	}
	st := g.Status()
	if len(st.Followers) != 2 {
		t.Fatalf("leader %d's followers: %+v", leader, st.Followers)
	}
	for _, f := range st.Followers {
		if f.Lag != 0 || !f.Active || f.State != "replicate" {
			t.Fatalf("quiet leader %d shows follower %+v (all: %+v)", leader, f, st.Followers)
		}
	}
}
