package main

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// groupApplied returns what nd reports of quorum queue name's group: its
// applied index and leader.
func groupApplied(t *testing.T, nd *ternNode, name string) (applied uint64, leader string, ok bool) {
	st, err := nd.clusterStatus(t)
	if err != nil {
		return 0, "", false
	}
	for _, g := range st.Groups {
		if g.Kind == "quorum" && g.VHost == "/" && g.Queue == name {
			return g.Applied, g.Leader, true
		}
	}
	return 0, "", false
}

// TestIdleQuorumQueueCatchesUpARestartedReplica: the leader of a quorum
// queue is killed, the survivors elect another and take more messages,
// and then nothing happens on the queue. The killed node, restarted, must
// catch its replica up without waiting for the next publish (the failover
// benchmark saw it stay at match 0 for over a minute: docs/performance.md).
func TestIdleQuorumQueueCatchesUpARestartedReplica(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	byName := map[string]*ternNode{}
	for _, nd := range nodes {
		byName[nd.name] = nd
	}
	c, ch := dialChannel(t, nodes[0].url())
	if _, err := ch.QueueDeclare("idle", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	mbPublish(t, nodes[0].url(), "idle", numbered("first", 5))
	old := byName[queueLeader(t, nodes[0], "idle", 30*time.Second)]
	var rest []*ternNode
	for _, nd := range nodes {
		if nd != old {
			rest = append(rest, nd)
		}
	}
	old.kill9(t)
	if !rest[0].waitFor(30*time.Second, func() bool {
		_, l, ok := groupApplied(t, rest[0], "idle")
		return ok && l != "" && l != old.name
	}) {
		t.Fatal("no new leader")
	}
	mbPublish(t, rest[0].url(), "idle", numbered("second", 5))
	want, _, _ := groupApplied(t, rest[0], "idle")
	// Let the survivors settle (and go quiet if they can) before the
	// killed node comes back.
	time.Sleep(3 * time.Second)
	old.start(t)
	old.waitServing(t, 60*time.Second)
	var got uint64
	if !old.waitFor(20*time.Second, func() bool {
		got, _, _ = groupApplied(t, old, "idle")
		return got >= want
	}) {
		st, _ := rest[0].clusterStatus(t)
		t.Fatalf("the restarted %s applied %d of the queue's %d entries after 20 s without publishes; %s's view: %+v", old.name, got, want, rest[0].name, st.Groups)
	}
	// The leader's view agrees: no follower lags (what the benchmark and
	// the node's rebalance read).
	var last clusterJSON
	if !rest[0].waitFor(20*time.Second, func() bool {
		_, l, ok := groupApplied(t, rest[0], "idle")
		if !ok || byName[l] == nil {
			return false
		}
		st, err := byName[l].clusterStatus(t)
		if err != nil {
			return false
		}
		last = st
		for _, g := range st.Groups {
			if g.Kind == "quorum" && g.Queue == "idle" && g.Leader == l {
				return len(g.Followers) == 2 && g.Followers[0].Lag == 0 && g.Followers[1].Lag == 0
			}
		}
		return false
	}) {
		t.Fatalf("the queue's leader still shows a follower lagging 20 s after it caught up: %+v", last.Groups)
	}
}
