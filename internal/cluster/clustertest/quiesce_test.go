package clustertest

import (
	"context"
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// TestIdleGroupsGoQuiet runs 20 groups on 3 nodes: once idle they stop
// ticking, the network carries only the per-node heartbeats, a proposal
// wakes a group, and a dead leader's followers wake and elect.
func TestIdleGroupsGoQuiet(t *testing.T) { eachStorage(t, testIdleGroupsGoQuiet) }

func testIdleGroupsGoQuiet(t *testing.T, o Options) {
	const groups = 20
	c := New(t, 3, o)
	for g := uint64(2); g <= groups; g++ {
		for _, id := range c.IDs() {
			if _, err := c.StartGroup(id, g, c.IDs(), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	acked := map[uint64][]string{}
	for g := uint64(1); g <= groups; g++ {
		leader := c.WaitLeader(g, nil, wait)
		v := fmt.Sprintf("g%d-first", g)
		if err := c.Propose(ctx, leader, g, v); err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
		acked[g] = append(acked[g], v)
	}
	allQuiet := func() bool {
		for _, id := range c.Up() {
			if s := c.Host(id).Stats(); s.Quiet != s.Groups {
				return false
			}
		}
		return true
	}
	if !c.Eventually(wait, allQuiet) {
		for _, id := range c.Up() {
			t.Logf("node %d: %+v", id, c.Host(id).Stats())
		}
		t.Fatal("idle groups did not all go quiet")
	}
	// Quiet: 50 ticks carry the node heartbeats (3 nodes × 2 peers per
	// tick: 300) and nothing per group (20 groups × 2 followers ×
	// heartbeat and response would add 4,000). The bound allows a group
	// woken for a while by a heartbeat late on a loaded machine (the
	// test's election timeout is 50 ms of real time).
	before := c.Net.Sent.Load()
	c.WaitTicks(50)
	if sent := c.Net.Sent.Load() - before; sent > 2*3*2*50 {
		t.Fatalf("%d messages in 50 quiet ticks, want about %d node heartbeats", sent, 3*2*50)
	}

	// A proposal wakes its group.
	g1 := c.WaitLeader(1, nil, wait)
	if err := c.Propose(ctx, g1, 1, "g1-wake"); err != nil {
		t.Fatal(err)
	}
	acked[1] = append(acked[1], "g1-wake")

	// An isolated quiet leader: its followers wake and elect another; the
	// old leader wakes too (its followers went silent) and steps down.
	if !c.Eventually(wait, allQuiet) {
		t.Fatal("groups did not go quiet again")
	}
	g2 := c.WaitLeader(2, nil, wait)
	c.Isolate(g2)
	next := c.WaitLeader(2, others(c, g2), wait)
	if next == g2 {
		t.Fatalf("isolated node %d still leads group 2", g2)
	}
	if !c.Eventually(wait, func() bool { return !c.Group(g2, 2).IsLeader() }) {
		t.Fatalf("isolated quiet leader %d never stepped down", g2)
	}
	c.Heal()
	v := "g2-after-isolation"
	if err := c.Propose(ctx, next, 2, v); err != nil {
		t.Fatal(err)
	}
	acked[2] = append(acked[2], v)

	// Node 1's death wakes the followers of every group it led.
	c.Crash(1)
	for g := uint64(1); g <= groups; g++ {
		leader := c.WaitLeader(g, nil, wait)
		v := fmt.Sprintf("g%d-after-crash", g)
		if err := c.Propose(ctx, leader, g, v); err != nil {
			t.Fatalf("group %d after the crash: %v", g, err)
		}
		acked[g] = append(acked[g], v)
	}
	c.Restart(1)
	for g := uint64(1); g <= groups; g++ {
		c.WaitApplied(g, nil, acked[g], wait)
		c.CheckNoDuplicates(g)
	}
	c.CheckElections()
}

func TestDisableQuiesceKeepsTicking(t *testing.T) {
	c := New(t, 3, Options{Host: func(cfg *raftnode.HostConfig) { cfg.DisableQuiesce = true }})
	leader := c.WaitLeader(1, nil, wait)
	proposeAll(t, c, leader, "v", 3)
	before := c.Net.Sent.Load()
	c.WaitTicks(60)
	for _, id := range c.IDs() {
		if s := c.Host(id).Stats(); s.Quiet != 0 || s.Quiesced != 0 {
			t.Fatalf("node %d quiesced with DisableQuiesce: %+v", id, s)
		}
	}
	// The leader heartbeats both followers every tick, and they answer.
	if sent := c.Net.Sent.Load() - before; sent < 4*50 {
		t.Fatalf("%d messages in 60 ticks of a ticking group, want at least 200", sent)
	}
}
