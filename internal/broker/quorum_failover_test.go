package broker

import (
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// Quorum queues when nodes fail, restart, lag or lose their leader.

// With x-single-active-consumer only the first consumer receives; when its
// node stops answering, the leader reports it down and the next consumer
// takes over, with the unacked messages redelivered.
func TestQuorumSingleActiveConsumerFailsOver(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", map[string]any{"x-single-active-consumer": true})
	a, b := &qtaker{}, &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	if err := qs[2].Consume(b, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	if a.bodies() != "m0,m1,m2" || b.bodies() != "" {
		t.Fatalf("active got %q, waiting got %q", a.bodies(), b.bodies())
	}
	// What /api/consumers shows on each consumer's node (user7 5.3).
	if sa, sb := qs[1].ConsumerStatus(a), qs[2].ConsumerStatus(b); sa != ConsumerSingleActive || sb != ConsumerWaiting {
		t.Fatalf("statuses before failover: active %v, waiting %v", sa, sb)
	}
	c.f.setLive(2, false)
	c.clk.Advance(quorumLiveCheck)
	c.settle()
	if got := b.bodies(); got != "m0*,m1*,m2*" {
		t.Fatalf("after failover the waiting consumer got %q", got)
	}
	if sb := qs[2].ConsumerStatus(b); sb != ConsumerSingleActive || !sb.Active() || sb.String() != "single_active" {
		t.Fatalf("status of the new active consumer: %v", sb)
	}
	c.publish(1, "q", "m3", message.Properties{}, nil, 0)
	c.settle()
	if got := b.bodies(); got != "m0*,m1*,m2*,m3" {
		t.Fatalf("new active consumer got %q", got)
	}
	for _, i := range []int{0, 2} {
		if r, u, _ := qs[i].Counts(); r != 0 || u != 4 {
			t.Fatalf("node %d: %d ready %d unacked", i+1, r, u)
		}
	}
}

// A new leader reports the nodes that do not answer: their consumers'
// unacked messages come back redelivered to consumers elsewhere. The node,
// back, catches up, gets its consumer back, and its stale acks change
// nothing.
func TestQuorumLeaderChangeReturnsUnackedOfDeadNode(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	gone := &qtaker{}
	if err := qs[2].Consume(gone, ConsumeOptions{Prefetch: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	if gone.bodies() != "m0,m1" {
		t.Fatalf("node 3's consumer got %q", gone.bodies())
	}
	stay := &qtaker{}
	if err := qs[0].Consume(stay, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.f.setLive(3, false)
	c.f.setLive(1, false) // the old leader goes too
	c.f.setLeader(2)
	c.settle()
	c.f.setLive(1, true)
	c.settle()
	if got := stay.bodies(); got != "m0*,m1*" {
		t.Fatalf("node 1's consumer got %q", got)
	}
	c.f.setLive(3, true)
	c.settle()
	qs[2].Ack(gone.deliveries()...) // stale: the messages are stay's now
	c.settle()
	wantCounts(t, qs, 0, 2, 2)
	c.publish(2, "q", "m2", message.Properties{}, nil, 0)
	c.publish(2, "q", "m3", message.Properties{}, nil, 0)
	c.settle()
	if got := gone.bodies(); got != "m0,m1,m2" && got != "m0,m1,m3" {
		t.Fatalf("node 3's consumer, back, got %q", got)
	}
	c.sameState(qs)
}

// A node that comes back gets its consumer back, and losing it a second
// time returns its messages again.
func TestQuorumNodeLostTwice(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m0", message.Properties{}, nil, 0)
	c.settle()
	for round := range 2 {
		c.f.setLive(3, false)
		c.clk.Advance(quorumLiveCheck)
		c.settle()
		for _, i := range []int{0, 1} {
			if r, u, _ := qs[i].Counts(); r != 1 || u != 0 {
				t.Fatalf("round %d: node %d: %d ready %d unacked", round, i+1, r, u)
			}
		}
		c.f.setLive(3, true)
		c.settle()
		wantCounts(t, qs, 0, 1, 1)
	}
	if got := cons.bodies(); got != "m0,m0*,m0*" {
		t.Fatalf("deliveries %q", got)
	}
	c.sameState(qs)
}

// A node that restarts (a new run, a new epoch) replays the group; the
// consumers of its earlier run are gone and their messages go to others.
func TestQuorumRestartedNodeReturnsItsEarlierRun(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	old := &qtaker{}
	if err := qs[1].Consume(old, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	other := &qtaker{}
	if err := qs[2].Consume(other, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	// Node 2 crashes: its replica goes; a new run of it opens the group
	// again and catches up from the log.
	c.f.mu.Lock()
	g := c.f.groups["group-q"]
	c.f.mu.Unlock()
	g.mu.Lock()
	crashed := g.replicas[2]
	g.mu.Unlock()
	crashed.Close()
	c.bs[1] = New(Config{Clock: c.clk, Replication: Replication{Node: 2, Quorum: c.f.node(2)}})
	qs[1] = c.declare("q", nil)[1]
	c.settle()
	if got := other.bodies(); got != "m0*,m1*" {
		t.Fatalf("node 3's consumer got %q", got)
	}
	wantCounts(t, qs, 0, 2, 1)
	c.sameState(qs)
}

// A queue whose consumers are all on the leader keeps no liveness timer.
func TestQuorumIdleQueueKeepsNoTimer(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	base := c.clk.Pending()
	qs := c.declare("q", nil)
	if err := qs[0].Consume(&qtaker{}, ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.clk.Advance(quorumLiveCheck)
	c.settle()
	if n := c.clk.Pending(); n != base {
		t.Fatalf("%d timers pending, %d before the queue", n, base)
	}
	if err := qs[2].Consume(&qtaker{}, ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if n := c.clk.Pending(); n != base+1 {
		t.Fatalf("with a consumer on another node: %d timers pending, want %d", n, base+1)
	}
}

// A replica that lagged and is brought up to date by a snapshot delivers
// what the snapshot has its consumers hold.
func TestQuorumRestoreDeliversWhatTheSnapshotAssigned(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m0", message.Properties{}, nil, 0)
	c.settle()
	c.f.setLive(2, false)
	c.publish(1, "q", "m1", message.Properties{}, nil, 0)
	c.publish(3, "q", "m2", message.Properties{}, nil, 0)
	c.settle()
	// Node 2 takes node 1's snapshot instead of the entries it missed.
	snap, err := qs[0].backend.(*quorumBackend).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := c.f.groups["group-q"]
	release := c.f.hold()
	if err := qs[1].backend.(*quorumBackend).Restore(snap); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	r2, n := g.replicas[2], len(g.entries)
	g.mu.Unlock()
	r2.applied = n // the group's goroutine is held: nothing applies meanwhile
	release()
	c.f.setLive(2, true)
	c.settle()
	if got := cons.bodies(); got != "m0,m1,m2" {
		t.Fatalf("after the snapshot the consumer got %q", got)
	}
	qs[1].Ack(cons.deliveries()...)
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	c.sameState(qs)
}

// Without a leader, publishes are not confirmed but refused, and basic.get
// has nothing.
func TestQuorumNoLeaderNacks(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	c.f.setLeader(0)
	conf := &qconfirms{}
	c.publish(1, "q", "x", message.Properties{}, conf, 7)
	c.settle()
	if err, ok := conf.result(7); !ok || err == nil {
		t.Fatalf("confirm without a leader: %v %v", ok, err)
	}
	if _, ok := qs[0].Get(true); ok {
		t.Fatal("get without a leader")
	}
}

// An ack or a cancel made while the group has no leader is retried until
// it applies: nothing stays checked out to a consumer that is gone.
func TestQuorumSettlementsRetriedWithoutALeader(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	c.f.setLeader(0)
	c.settle()
	ds := cons.deliveries()
	qs[1].Ack(ds[0])
	qs[1].Cancel(cons)
	qs[1].Requeue(ds[1:2])
	c.settle()
	wantCounts(t, qs, 0, 3, 1)
	c.f.setLeader(1)
	c.settle()
	c.clk.Advance(quorumRetry)
	c.settle()
	// m0 acked, m1 requeued, m2 still the cancelled consumer's until its
	// channel settles it.
	wantCounts(t, qs, 1, 1, 0)
	qs[1].Requeue(ds[2:])
	c.settle()
	wantCounts(t, qs, 2, 0, 0)
	c.sameState(qs)
}
