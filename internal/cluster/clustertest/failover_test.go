package clustertest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

func others(c *Cluster, not ...NodeID) []NodeID {
	var rest []NodeID
	for _, id := range c.IDs() {
		if !slices.Contains(not, id) {
			rest = append(rest, id)
		}
	}
	return rest
}

func TestLeaderLoss(t *testing.T) { eachStorage(t, testLeaderLoss) }

func testLeaderLoss(t *testing.T, o Options) {
	c := New(t, 3, o)
	old := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, old, "before", 30)
	c.Crash(old)
	next := c.WaitLeader(1, nil, wait)
	if next == old {
		t.Fatalf("crashed node %d still leads", old)
	}
	c.WaitApplied(1, nil, acked, wait) // nothing committed was lost
	acked = append(acked, proposeAll(t, c, next, "after", 30)...)
	c.Restart(old)
	c.WaitApplied(1, nil, acked, wait) // the restarted node catches up from its log
	c.CheckNoDuplicates(1)
	c.CheckElections()
}

func TestWholeClusterRestart(t *testing.T) { eachStorage(t, testWholeClusterRestart) }

func testWholeClusterRestart(t *testing.T, o Options) {
	c := New(t, 3, o)
	acked := proposeAll(t, c, 0, "v", 40)
	c.WaitApplied(1, nil, acked, wait)
	for _, id := range c.IDs() {
		c.Crash(id)
	}
	for _, id := range c.IDs() {
		c.Restart(id)
	}
	c.WaitLeader(1, nil, wait)
	acked = append(acked, proposeAll(t, c, 0, "w", 10)...)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
}

func TestMinorityPartitionNeverCommits(t *testing.T) {
	eachStorage(t, testMinorityPartitionNeverCommits)
}

func testMinorityPartitionNeverCommits(t *testing.T, o Options) {
	for _, leaderInMinority := range []bool{true, false} {
		t.Run(fmt.Sprintf("leaderInMinority=%v", leaderInMinority), func(t *testing.T) {
			c := New(t, 3, o)
			leader := c.WaitLeader(1, nil, wait)
			acked := proposeAll(t, c, leader, "before", 10)
			c.WaitApplied(1, nil, acked, wait)
			minority := leader
			if !leaderInMinority {
				minority = others(c, leader)[0]
			}
			majority := others(c, minority)
			c.Partition([]NodeID{minority}, majority)

			// Proposals on the minority side time out; none succeeds.
			var lost []string
			errs := make(chan error, 5)
			for i := range 5 {
				v := fmt.Sprintf("minority-%d", i)
				lost = append(lost, v)
				c.Group(minority, 1).ProposeAsync([]byte(v), func(_ any, err error) { errs <- err })
			}
			// Meanwhile the majority elects (or keeps) a leader and commits.
			c.WaitLeader(1, majority, wait)
			for _, id := range majority {
				acked = append(acked, proposeAll(t, c, id, fmt.Sprintf("majority-%d", id), 5)...)
			}
			for range 5 {
				select {
				case err := <-errs:
					if !errors.Is(err, raftnode.ErrProposalTimeout) {
						t.Fatalf("minority proposal ended with %v, want ErrProposalTimeout", err)
					}
				case <-time.After(wait):
					t.Fatal("a minority proposal never completed")
				}
			}
			if sm := c.SM(minority, 1); sm.Contains(lost[:1]) {
				t.Fatalf("minority node applied its own uncommitted proposal")
			}
			c.Heal()
			c.WaitLeader(1, nil, wait)
			acked = append(acked, proposeAll(t, c, 0, "healed", 5)...)
			c.WaitApplied(1, nil, acked, wait)
			for _, id := range c.IDs() {
				for _, v := range lost {
					if c.SM(id, 1).Contains([]string{v}) {
						t.Fatalf("node %d applied %s, proposed on the minority side", id, v)
					}
				}
			}
			c.CheckNoDuplicates(1)
			c.CheckElections()
		})
	}
}
