package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/vfs"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// joiner configures a node that joins the running cluster of nodes.
func joiner(t *testing.T, nodes []*testNode, name string, standby bool) *testNode {
	self := Member{ID: MemberID(name), Name: name, Addr: freeport.Loopback(t), Standby: standby}
	members := append(slices.Clone(nodes[0].cfg.Members), self)
	return &testNode{cfg: Config{Self: self, Members: members, Dir: filepath.Join(t.TempDir(), "cluster"), FS: vfs.Default,
		Secret: []byte(testSecret), StartTimeout: 30 * time.Second, Join: true}}
}

func metaStatus(n *Node) (voters, learners []uint64) {
	st := n.meta.Load().Status()
	return st.Voters, st.Learners
}

// TestAddAndRemoveNode: a fourth node joins a running three-node cluster,
// catches up, promotes itself and applies what follows; then a founding
// node is removed: it learns it, stops, cannot start again, and its name
// cannot come back.
func TestAddAndRemoveNode(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i := range 5 {
		if err := nodes[i%3].node.Propose(ctx, broker.AddVHost{Name: fmt.Sprintf("before%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n4 := joiner(t, nodes, "n4", false)
	// Added before it runs: a learner the leader sends to once it is up.
	if err := nodes[1].node.AddNode(ctx, "n4", n4.cfg.Self.Addr, false); err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	if err := nodes[2].node.AddNode(ctx, "n4", n4.cfg.Self.Addr, false); err != nil {
		t.Fatalf("AddNode again (nothing to do): %v", err)
	}
	if err := nodes[0].node.AddNode(ctx, "n4", "127.0.0.1:1", false); !errors.Is(err, ErrMemberConflict) {
		t.Fatalf("n4 at another address: %v", err)
	}
	if err := n4.start(t); err != nil {
		t.Fatalf("n4 start: %v", err)
	}
	waitUntil(t, 20*time.Second, "n4 to promote itself", func() bool {
		v, _ := metaStatus(nodes[0].node)
		return slices.Contains(v, n4.cfg.Self.ID)
	})
	if err := n4.node.Propose(ctx, broker.AddVHost{Name: "from-n4"}); err != nil {
		t.Fatalf("propose on n4: %v", err)
	}
	want := []string{"before0", "before1", "before2", "before3", "before4", "from-n4"}
	for _, tn := range append(slices.Clone(nodes), n4) {
		waitUntil(t, 10*time.Second, tn.cfg.Self.Name+" to apply everything", func() bool { return slices.Equal(tn.broker.VHosts(), want) })
	}
	st := nodes[2].node.Status()
	if i := slices.IndexFunc(st.Nodes, func(ns NodeStatus) bool { return ns.Name == "n4" }); i < 0 || st.Nodes[i].Role != "voter" {
		t.Fatalf("n4 in n3's status: %+v", st.Nodes)
	}

	// Remove n3 through n4.
	n3 := nodes[2]
	if err := n3.node.RemoveNode(ctx, "n3"); err == nil {
		t.Fatal("a node removed itself")
	}
	if err := n4.node.RemoveNode(ctx, "n3"); err != nil {
		t.Fatalf("RemoveNode(n3): %v", err)
	}
	select {
	case <-n3.node.Removed():
	case <-time.After(10 * time.Second):
		t.Fatal("n3 did not learn it was removed")
	}
	waitUntil(t, 10*time.Second, "n1 to apply n3's removal", func() bool {
		v, l := metaStatus(nodes[0].node)
		return !slices.Contains(v, n3.cfg.Self.ID) && !slices.Contains(l, n3.cfg.Self.ID) && len(v) == 3
	})
	had := n3.broker.VHosts()
	if err := nodes[0].node.Propose(ctx, broker.AddVHost{Name: "after"}); err != nil {
		t.Fatalf("propose after the removal: %v", err)
	}
	want = append(want, "after")
	for _, tn := range []*testNode{nodes[0], nodes[1], n4} {
		waitUntil(t, 10*time.Second, tn.cfg.Self.Name+" to apply after the removal", func() bool { return slices.Equal(tn.broker.VHosts(), want) })
	}
	if got := n3.broker.VHosts(); !slices.Equal(got, had) {
		t.Fatalf("the removed n3 applied entries after its removal: %v, had %v", got, had)
	}
	waitUntil(t, 10*time.Second, "the others to forget n3", func() bool {
		return !nodes[0].node.tr.Stats().Peers[n3.cfg.Self.ID].Connected && !n4.node.tr.Stats().Peers[n3.cfg.Self.ID].Connected
	})
	if err := nodes[1].node.AddNode(ctx, "n3", n3.cfg.Self.Addr, false); !errors.Is(err, ErrNodeRemoved) {
		t.Fatalf("re-adding n3: %v, want ErrNodeRemoved", err)
	}
	if err := nodes[1].node.AddNode(ctx, "n3", "127.0.0.1:2", false); !errors.Is(err, ErrNodeRemoved) || !strings.Contains(err.Error(), "new name") {
		t.Fatalf("re-adding n3 at a new address: %v, want ErrNodeRemoved", err)
	}
	if i := slices.IndexFunc(nodes[0].node.Status().Nodes, func(ns NodeStatus) bool { return ns.Name == "n3" }); i < 0 || nodes[0].node.Status().Nodes[i].Role != "removed" {
		t.Fatalf("n3 in the status: %+v", nodes[0].node.Status().Nodes)
	}

	// n3 restarted on its data directory refuses to start.
	_ = n3.node.Close()
	restarted, err := New(n3.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Close() })
	err = restarted.Start(ctx, &fakeBroker{})
	if err == nil || !strings.Contains(err.Error(), "was removed from the cluster") {
		t.Fatalf("the removed n3 restarted: %v", err)
	}

	// A restarted member knows n4 from the log, not from its peers list.
	n1 := nodes[0]
	_ = n1.node.Close()
	n1.cfg.StartTimeout = 30 * time.Second
	if err := n1.start(t); err != nil {
		t.Fatalf("n1 restart: %v", err)
	}
	names := map[string]string{}
	for _, ns := range n1.node.Status().Nodes {
		names[ns.Name] = ns.Role
	}
	if names["n4"] != "voter" || names["n3"] != "removed" {
		t.Fatalf("restarted n1's view of the membership: %v", names)
	}

	// The joined node restarts from its own log (--join changes nothing
	// then) and is still a voter.
	_ = n4.node.Close()
	if err := n4.start(t); err != nil {
		t.Fatalf("n4 restart: %v", err)
	}
	if v, _ := metaStatus(n4.node); !slices.Contains(v, n4.cfg.Self.ID) || n4.node.IsStandby() {
		t.Fatalf("restarted n4: metadata voters %v", v)
	}
	if err := n4.node.Propose(ctx, broker.AddVHost{Name: "restarted"}); err != nil {
		t.Fatalf("propose on the restarted n4: %v", err)
	}
	want = append(want, "restarted")
	waitUntil(t, 10*time.Second, "the restarted n4 to apply everything", func() bool { return slices.Equal(n4.broker.VHosts(), want) })
}

// user7 4.4: a node removed while it was dead never applied its
// tombstone; restarted with its old command, it is told by the members
// that it was removed and stops at once, saying so, instead of waiting
// StartTimeout for a quorum. n4 has the highest id (nobody dials it: it
// asks the members, probeLowerPeers); n1 the lowest (it dials them).
func TestNodeRemovedWhileDeadIsToldAtRestart(t *testing.T) {
	nodes := newTestNodes(t, 4)
	startAll(t, nodes)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	for _, c := range []struct{ gone, asker *testNode }{{nodes[3], nodes[1]}, {nodes[0], nodes[2]}} {
		name := c.gone.cfg.Self.Name
		if err := c.gone.node.Close(); err != nil {
			t.Fatal(err)
		}
		if err := c.asker.node.RemoveNode(ctx, name); err != nil {
			t.Fatalf("RemoveNode(%s): %v", name, err)
		}
		c.gone.cfg.StartTimeout = time.Minute
		start := time.Now()
		err := c.gone.start(t)
		if err == nil || !strings.Contains(err.Error(), "was removed from the cluster") {
			t.Fatalf("%s removed while dead, restarted: %v", name, err)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("%s took %v to learn it was removed", name, took)
		}
		_ = c.gone.node.Close()
	}
	if err := nodes[1].node.Propose(ctx, broker.AddVHost{Name: "after"}); err != nil {
		t.Fatalf("the two members left: %v", err)
	}
}

// user7 5.7: a new node started without --join on a fresh data directory
// next to a running cluster that does not list it is told, by the
// members' refusals, that it is not a member, and Start's error says to
// use --join and tern cluster add-node rather than blaming connectivity.
// n0 has the lowest id (it dials the members: its dials' refusals), n9
// the highest (nobody dials it: its probes' refusals). Every member it
// reaches refusing it, it gives up within seconds, not after its start
// timeout (2 minutes by default).
func TestNewNodeWithoutJoinIsToldToJoin(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []uint64{999, 1009} {
		name := fmt.Sprintf("n%d", id%10)
		self := Member{ID: id, Name: name, Addr: freeport.Loopback(t)}
		tn := &testNode{cfg: Config{Self: self, Members: append(slices.Clone(nodes[0].cfg.Members), self),
			Dir: filepath.Join(t.TempDir(), "cluster"), FS: vfs.Default, Secret: []byte(testSecret), StartTimeout: 2 * time.Minute}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tn.start(t)
		}()
	}
	began := time.Now()
	wg.Wait()
	if took := time.Since(began); took > time.Minute {
		t.Errorf("the new nodes waited %v before giving up", took)
	}
	for i, err := range errs {
		// Which members answered in time is the machine's load's to
		// decide: at least one did.
		if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "--join") ||
			!strings.Contains(err.Error(), "refuse this node as an unknown node id") {
			t.Errorf("new node %d without --join: %v", i, err)
		}
	}
}
