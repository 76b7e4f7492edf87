package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/clustertest"
)

// openQuorum opens the quorum queue name (initial group size size) on every node.
func openQuorum(t *testing.T, nodes []*testNode, name string, size int, target ...int32) []broker.ReplicatedLog {
	t.Helper()
	def := broker.QueueDef{VHost: "/", ID: "id-" + name, QueueConfig: broker.QueueConfig{Name: name, Durable: true,
		Args: map[string]any{"x-queue-type": "quorum", "x-quorum-initial-group-size": int32(size)}}}
	if len(target) > 0 {
		def.Args["x-quorum-target-group-size"] = target[0]
	}
	var logs []broker.ReplicatedLog
	for _, tn := range nodes {
		l, err := tn.node.Quorum().Open(def, &clustertest.ListSM{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	return logs
}

// queueVoters is the voters of queue name as node n sees them.
func queueVoters(n *Node, name string) []uint64 {
	for _, q := range n.openGroups() {
		if q.name == name {
			return q.g.Status().Voters
		}
	}
	return nil
}

// TestGrowAndShrinkQuorumQueues: grow makes a learner a voter of the
// matching queues (all, or those with an even number of voters), shrink
// makes it a learner again, never below a queue's size.
func TestGrowAndShrinkQuorumQueues(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	openQuorum(t, nodes, "pairs", 2)
	openQuorum(t, nodes, "single", 1)
	openQuorum(t, nodes, "other", 2)
	// The node that is a learner of "pairs".
	var target *testNode
	for _, tn := range nodes {
		waitUntil(t, 10*time.Second, "a leader of pairs", func() bool { return len(queueVoters(tn.node, "pairs")) == 2 })
		if !slices.Contains(queueVoters(tn.node, "pairs"), tn.cfg.Self.ID) {
			target = tn
		}
	}
	if target == nil {
		t.Fatal("no learner of pairs")
	}
	asker := nodes[0].node
	if _, err := asker.Grow(ctx, GrowRequest{Node: "nope"}); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("grow onto an unknown node: %v", err)
	}
	if _, err := asker.Grow(ctx, GrowRequest{Node: "n1", QueuePattern: "("}); !errors.Is(err, ErrBadMember) {
		t.Fatalf("a bad pattern: %v", err)
	}
	res, err := asker.Grow(ctx, GrowRequest{Node: target.cfg.Self.Name, QueuePattern: "^(pairs|single)$", Even: true})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]GrowResult{}
	for _, r := range res {
		byName[r.Queue] = r
	}
	if len(res) != 2 || byName["pairs"].Result != "grown" || byName["pairs"].Voters != 3 {
		t.Fatalf("grow --even: %+v", res)
	}
	// "single" has 1 voter: odd, skipped, unless target already is its voter.
	if r := byName["single"].Result; r != "skipped: 1 voters, an odd number" && r != "skipped: already a voter" {
		t.Fatalf("single: %+v", res)
	}
	for _, tn := range nodes {
		waitUntil(t, 10*time.Second, tn.cfg.Self.Name+" to see the grown group", func() bool {
			return slices.Contains(queueVoters(tn.node, "pairs"), target.cfg.Self.ID)
		})
	}
	if v := queueVoters(asker, "other"); len(v) != 2 {
		t.Fatalf("a queue the pattern leaves out changed: %v", v)
	}
	// Shrink: pairs has 3 voters and size 2, so target goes back to a
	// learner; other is at its size and stays.
	res, err = asker.Shrink(ctx, GrowRequest{Node: target.cfg.Self.Name, QueuePattern: "^(pairs|other)$"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch {
		case r.Queue == "pairs" && (r.Result != "shrunk" || r.Voters != 2):
			t.Fatalf("shrink pairs: %+v", res)
		case r.Queue == "other" && r.Result == "shrunk":
			t.Fatalf("shrink took other below its size: %+v", res)
		}
	}
	waitUntil(t, 10*time.Second, "the demotion everywhere", func() bool {
		for _, tn := range nodes {
			if slices.Contains(queueVoters(tn.node, "pairs"), target.cfg.Self.ID) || len(queueVoters(tn.node, "pairs")) != 2 {
				return false
			}
		}
		return true
	})
	// It stays a learner: reconcile does not promote it back (pairs is at
	// its size).
	time.Sleep(2 * reconcileEvery)
	if v := queueVoters(target.node, "pairs"); len(v) != 2 || slices.Contains(v, target.cfg.Self.ID) {
		t.Fatalf("after reconcile: voters %v", v)
	}
}

// TestTargetGroupSizeGrowsTheQueue: a queue declared with one voter and
// x-quorum-target-group-size 3 grows onto the other members by itself
// (each promotes itself once caught up), and shrink keeps it there.
func TestTargetGroupSizeGrowsTheQueue(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	openQuorum(t, nodes, "auto", 1, 3)
	for _, tn := range nodes {
		waitUntil(t, 20*time.Second, tn.cfg.Self.Name+" to see 3 voters", func() bool { return len(queueVoters(tn.node, "auto")) == 3 })
	}
	res, err := nodes[0].node.Shrink(t.Context(), GrowRequest{Node: "n2"})
	if err != nil || len(res) != 1 || res[0].Result != "skipped: 3 voters, its size is 3" {
		t.Fatalf("shrink below the target: %+v %v", res, err)
	}
	if got := targetGroupSize(map[string]any{"x-quorum-target-group-size": "5"}); got != 0 {
		t.Fatalf("a string target: %d", got)
	}
}
