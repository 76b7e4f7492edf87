package broker

import (
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// Messages and consumers that must never stay stranded on a replica: each
// test is a path by which a node once lost track of what the machine had
// assigned to it (review5 A1-A3).

// A node the leader reported down, which catches up by a snapshot rather
// than by the node-down entry, still asks for its consumers back: its
// live consumer gets the messages published afterwards.
func TestQuorumNodeDownLearntFromSnapshotAsksForConsumersBack(t *testing.T) {
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m0", message.Properties{}, nil, 0)
	c.settle()
	c.f.setLive(3, false)
	c.clk.Advance(quorumLiveCheck) // the leader reports node 3 down
	c.settle()
	if _, u, _ := qs[0].Counts(); u != 0 {
		t.Fatalf("node-down did not return node 3's message: unacked %d", u)
	}
	// Node 3 takes node 1's snapshot instead of the entries it missed.
	snap, err := qs[0].backend.(*quorumBackend).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := c.f.groups["group-q"]
	release := c.f.hold()
	if err := qs[2].backend.(*quorumBackend).Restore(snap); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	r3, n := g.replicas[3], len(g.entries)
	g.mu.Unlock()
	r3.applied = n // the group's goroutine is held: nothing applies meanwhile
	release()
	c.f.setLive(3, true)
	c.settle()
	for i := 1; i <= 3; i++ {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	if got := cons.bodies(); got != "m0,m0*,m1,m2,m3" {
		r, u, nc := qs[0].Counts()
		t.Fatalf("node 3's consumer got %q after catching up by a snapshot, want m0,m0*,m1,m2,m3 (leader: ready %d unacked %d consumers %d)",
			got, r, u, nc)
	}
	c.sameState(qs)
}

// A basic.get whose proposal its node was told failed (the cluster fails
// waiting proposals at once with ErrLeaderChanged, and they may still
// commit) but which committed gives its message back: the client was
// told get-empty, so nobody else would ever settle it.
func TestQuorumGetFailedButCommittedGivesItsMessageBack(t *testing.T) {
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	c.f.lie.Store(1) // committed, but its proposer hears of a failure
	if d, ok := qs[1].Get(false); ok {
		t.Fatalf("get returned %q although its proposal failed", d.Msg.Body)
	}
	c.settle()
	wantCounts(t, qs, 1, 0, 0)
	cons := &qtaker{}
	if err := qs[0].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := cons.bodies(); got != "m*" { // checked out once: redelivered
		t.Fatalf("a consumer got %q after the failed get, want m*", got)
	}
	c.sameState(qs)
}

// The same for a no-ack basic.get, and a get that does return: what the
// client got stays its own until settled.
func TestQuorumGetFailedButCommittedNoAckAndLaterGets(t *testing.T) {
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	for i := range 3 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	d0, ok := qs[1].Get(false) // held by the client, unacked
	if !ok || string(d0.Msg.Body) != "m0" {
		t.Fatalf("get: %v %q", ok, d0.Msg.Body)
	}
	c.f.lie.Store(1)
	if d, ok := qs[1].Get(true); ok {
		t.Fatalf("no-ack get returned %q although its proposal failed", d.Msg.Body)
	}
	c.settle()
	wantCounts(t, qs, 2, 1, 0) // m0 still the client's; m1 back
	d1, ok := qs[1].Get(false)
	if !ok || string(d1.Msg.Body) != "m1" {
		t.Fatalf("get after the failed one: %v %q, want m1", ok, d1.Msg.Body)
	}
	qs[1].Ack(d0, d1)
	c.settle()
	wantCounts(t, qs, 1, 0, 0)
	c.sameState(qs)
}

// A consumer cancel whose retries all fail (no leader for longer than
// quorumRetryN retry periods) is still proposed once a leader is back: the
// cancelled consumer takes no more messages.
func TestQuorumCancelOutlastingItsRetriesLeavesNoGhost(t *testing.T) {
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	gone := &qtaker{}
	if err := qs[1].Consume(gone, ConsumeOptions{Prefetch: 3}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.f.setLeader(0)
	c.settle()
	qs[1].Cancel(gone)
	c.settle()
	for range quorumRetryN + 2 {
		c.clk.Advance(quorumRetry)
		c.settle()
	}
	c.f.setLeader(1)
	c.settle()
	stay := &qtaker{}
	if err := qs[0].Consume(stay, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	c.clk.Advance(quorumRetry)
	c.settle()
	if got := stay.bodies(); got != "m0,m1,m2,m3,m4,m5" {
		r, u, n := qs[0].Counts()
		t.Fatalf("the live consumer got %q, want all six (ready %d unacked %d consumers %d)", got, r, u, n)
	}
	wantCounts(t, qs, 0, 6, 1)
	c.sameState(qs)
}

// A node whose earlier run made many checkouts and gets replays them all
// when it restarts; each asks for node-restarted, and one is proposed at a
// time, not one per entry.
func TestQuorumRestartReplayProposesOneNodeRestarted(t *testing.T) {
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	for i := range 10 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	for range 10 {
		if _, ok := qs[1].Get(false); !ok {
			t.Fatal("get: empty")
		}
	}
	if err := qs[1].Consume(&qtaker{}, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	g := c.f.groups["group-q"]
	g.mu.Lock()
	crashed := g.replicas[2]
	g.mu.Unlock()
	crashed.Close()
	c.bs[1] = New(Config{Clock: c.clk, Replication: Replication{Node: 2, Quorum: c.f.node(2)}})
	qs[1] = c.declare("q", nil)[1]
	c.settle()
	c.clk.Advance(quorumRetry) // what the replay could not propose yet
	c.settle()
	g.mu.Lock()
	n := 0
	for _, e := range g.entries {
		if qcmdKind(e[0]) == qcNodeRestarted {
			n++
		}
	}
	g.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d node-restarted entries after the replay, want 1", n)
	}
	wantCounts(t, qs, 10, 0, 0) // the earlier run's gets and consumer gave everything back
	c.sameState(qs)
}

// The rule that gives back what failed gets checked out: a message is
// returned only once no get call that started before it applied still
// waits (that call may be the one it belongs to); calls started later
// cannot be.
func TestQuorumUnclaimedGetReturnedOnceNoEarlierCallWaits(t *testing.T) {
	c := newQCluster(t, 1)
	qs := c.declare("q", nil)
	b := qs[0].backend.(*quorumBackend)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.getsWaiting = map[uint64]bool{3: true, 5: true}
	b.unclaimed = map[uint64]unclaimedGet{
		10: {acquired: 1, seq: 2}, // applied when calls 1-2 had started: 3 and 5 cannot take it
		11: {acquired: 1, seq: 3}, // call 3 may
		12: {acquired: 2, seq: 6}, // calls 3 and 5 may
	}
	refs := b.returnUnclaimedLocked()
	if len(refs) != 1 || refs[0].id != 10 || refs[0].key != b.getKey || refs[0].acquired != 1 {
		t.Fatalf("returned %+v, want only id 10", refs)
	}
	delete(b.getsWaiting, 3)
	if refs = b.returnUnclaimedLocked(); len(refs) != 1 || refs[0].id != 11 {
		t.Fatalf("after call 3 ended: returned %+v, want id 11", refs)
	}
	delete(b.getsWaiting, 5)
	if refs = b.returnUnclaimedLocked(); len(refs) != 1 || refs[0].id != 12 || refs[0].acquired != 2 {
		t.Fatalf("after call 5 ended: returned %+v, want id 12", refs)
	}
	if len(b.unclaimed) != 0 {
		t.Fatalf("unclaimed left: %v", b.unclaimed)
	}
	if n := b.inflight[b.getKey]; n != 3 {
		t.Fatalf("%d returns counted in flight, want 3", n)
	}
}
