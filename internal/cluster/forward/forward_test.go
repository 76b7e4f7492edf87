package forward

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// A publish with confirms on node 2 to a classic queue node 1 holds is
// confirmed once node 1 has it, and lands in publish order.
func TestPublishConfirmToRemoteQueue(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	if q2 := queueOf(t, ns[1], "q"); !q2.Remote() || q2.Node() != 1 {
		t.Fatalf("node 2's q: remote %v node %d", q2.Remote(), q2.Node())
	}
	const n = 300
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range n {
		res := publish(t, ns[1], &s, "q", fmt.Sprintf("m%d", i), i%2 == 0, cf, uint64(i))
		if res.Routed != 1 || res.Pending != 1 || res.Rejected {
			t.Fatalf("publish %d: %+v", i, res)
		}
	}
	got := cf.wait(t, n, 5*time.Second)
	for i := range n {
		if err := got[uint64(i)]; err != nil {
			t.Fatalf("publish %d nacked: %v", i, err)
		}
	}
	cf.mu.Lock()
	batches := cf.batches
	cf.mu.Unlock()
	if batches == 0 || batches > n {
		t.Fatalf("%d DurableBatchEnd calls for %d publishes", batches, n)
	}
	if st := ns[1].f.Stats(); st.PublishesForwarded != n || st.PublishesNacked != 0 || st.PublishBatches == 0 || st.PublishBatches > n {
		t.Fatalf("client stats %+v", st)
	}
	if st := ns[0].f.Stats(); st.PublishesServed != n {
		t.Fatalf("owner stats %+v", st)
	}
	q1 := queueOf(t, ns[0], "q")
	if r, u, c := q1.Counts(); r != n || u != 0 || c != 0 {
		t.Fatalf("owner counts %d/%d/%d", r, u, c)
	}
	c := newConsumer(0, true)
	if err := q1.Consume(c, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "local consumption", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == n })
	if g, _, _ := c.snapshot(); !slices.Equal(g, bodies("m", 0, n)) {
		t.Fatalf("order on the owner: %v", g[:10])
	}
}

// The owner's x-overflow reject-publish reaches node 2's publisher as a
// nack, never a confirm.
func TestPublishRejectedByOwnerIsNack(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", map[string]any{"x-max-length": int64(2), "x-overflow": "reject-publish"})
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range 4 {
		publish(t, ns[1], &s, "q", fmt.Sprintf("m%d", i), true, cf, uint64(i))
	}
	got := cf.wait(t, 4, 5*time.Second)
	for i := range 4 {
		if nack := got[uint64(i)] != nil; nack != (i >= 2) {
			t.Fatalf("publish %d: err %v", i, got[uint64(i)])
		}
	}
}

// With the owner gone, publishes are nacked promptly.
func TestOwnerUnreachableNacks(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	ns[0].f.Close()
	_ = ns[0].tr.Close()
	cf := newConfirms()
	var s broker.RouteScratch
	start := time.Now()
	for i := range 10 {
		publish(t, ns[1], &s, "q", fmt.Sprintf("m%d", i), true, cf, uint64(i))
	}
	got := cf.wait(t, 10, 5*time.Second)
	for i := range 10 {
		if got[uint64(i)] == nil {
			t.Fatalf("publish %d confirmed with its queue's node down", i)
		}
	}
	if st := ns[1].f.Stats(); st.PublishesNacked != 10 {
		t.Fatalf("client stats %+v", st)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("nacks took %v", el)
	}
	// basic.get and consume fail rather than hang.
	q2 := queueOf(t, ns[1], "q")
	if _, ok := q2.Get(false); ok {
		t.Fatal("get from an unreachable owner found a message")
	}
	err := q2.Consume(newConsumer(1, false), broker.ConsumeOptions{Prefetch: 1})
	if !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("consume from an unreachable owner: %v", err)
	}
}

// A consumer on node 2 of node 1's queue gets the messages in order, never
// more unacked than its prefetch, on the owner too; acks free it.
func TestRemoteConsumePrefetchInOrder(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	const n = 40
	for i := range n {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), true, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(5, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	q2.Dispatch()
	for round := 0; round < n/5; round++ {
		waitFor(t, 2*time.Second, "5 unacked", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 5 })
		r, u, cons := q1.Counts()
		if u != 5 || r != n-5*(round+1) || cons != 1 {
			t.Fatalf("round %d: owner counts ready %d unacked %d consumers %d", round, r, u, cons)
		}
		ds := c.take()
		for _, d := range ds {
			if d.Queue != q2 || d.RemoteConsumer() == 0 {
				t.Fatalf("delivery %+v", d)
			}
		}
		q2.Ack(ds...)
		q2.Dispatch()
	}
	waitFor(t, 2*time.Second, "owner drained", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
	if g, _, _ := c.snapshot(); !slices.Equal(g, bodies("m", 0, n)) {
		t.Fatalf("order: %v", g)
	}
	// Counts on node 2 come from the owner (cached).
	waitFor(t, 3*time.Second, "node 2's counts", nil, func() bool { r, u, cons := q2.Counts(); return r == 0 && u == 0 && cons == 1 })
	q2.Cancel(c)
	waitFor(t, 2*time.Second, "owner consumer gone", nil, func() bool { _, _, cons := q1.Counts(); return cons == 0 })
}

// Requeue, reject and ack from node 2 act on the owner by delivery id.
func TestSettleRoundTrips(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	for _, b := range []string{"a", "b", "c"} {
		publish(t, ns[0], &s, "q", b, false, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(3, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "3 deliveries", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 3 })
	ds := c.take()
	q2.Requeue(ds[:1]) // a comes back, redelivered
	waitFor(t, 2*time.Second, "a again", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 1 })
	again := c.take()
	if string(again[0].Msg.Body) != "a" || !again[0].Redelivered {
		t.Fatalf("requeued delivery: %s redelivered %v", again[0].Msg.Body, again[0].Redelivered)
	}
	q2.Reject(ds[1:2]) // b is dropped (no dead-letter exchange)
	waitFor(t, 2*time.Second, "b gone", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 2 })
	q2.Ack(again[0], ds[2])
	waitFor(t, 2*time.Second, "all settled", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
	if g, _, _ := c.snapshot(); !slices.Equal(g, []string{"a", "b", "c", "a"}) {
		t.Fatalf("deliveries %v", g)
	}
}

// When the consumer's node goes away, the owner requeues what it held
// once the lease runs out.
func TestConsumerNodeGoneRequeues(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	for i := range 10 {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), true, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(4, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "4 unacked", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 4 })
	if r, u, _ := q1.Counts(); r != 6 || u != 4 {
		t.Fatalf("owner counts %d/%d", r, u)
	}
	// Node 2 dies: no keepalive, no acks, its connection gone.
	ns[1].f.Close()
	_ = ns[1].tr.Close()
	waitFor(t, 3*time.Second, "requeue on the owner", nil, func() bool {
		r, u, cons := q1.Counts()
		return r == 10 && u == 0 && cons == 0
	})
	// The requeued messages are redelivered, first in line.
	c1 := newConsumer(0, true)
	if err := q1.Consume(c1, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "all 10", c1.ch, func() bool { g, _, _ := c1.snapshot(); return len(g) == 10 })
	if g, _, _ := c1.snapshot(); !slices.Equal(g, bodies("m", 0, 10)) {
		t.Fatalf("order after requeue: %v", g)
	}
}

// The owner going away cancels node 2's consumers once the lease is over.
func TestOwnerGoneCancelsConsumer(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	q2 := queueOf(t, ns[1], "q")
	c := newConsumer(1, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	ns[0].f.Close()
	_ = ns[0].tr.Close()
	waitFor(t, 3*time.Second, "cancel", c.ch, func() bool { _, _, k := c.snapshot(); return k == 1 })
}

// A no-ack consumer without prefetch gets everything, in order, through a
// window smaller than the queue (credit comes back as it takes them).
func TestNoAckConsumerWindow(t *testing.T) {
	ns := newCluster(t, 2, func(c *Config) { c.Window = 16 })
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	const n = 500
	for i := range n {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), false, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(0, true)
	c.refuse = true
	if err := q2.Consume(c, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	// While the consumer takes nothing, the owner pushes one window.
	waitFor(t, 2*time.Second, "one window out", nil, func() bool { _, u, _ := q1.Counts(); return u == 16 })
	time.Sleep(100 * time.Millisecond) // two keepalives: nothing more may go
	if r, u, _ := q1.Counts(); u != 16 || r != n-16 {
		t.Fatalf("past the window: ready %d unacked %d", r, u)
	}
	c.mu.Lock()
	c.refuse = false
	c.mu.Unlock()
	q2.Dispatch()
	waitFor(t, 5*time.Second, "all", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == n })
	if g, _, _ := c.snapshot(); !slices.Equal(g, bodies("m", 0, n)) {
		t.Fatalf("order")
	}
	waitFor(t, 2*time.Second, "acked on the owner", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
}

// basic.get and purge from node 2.
func TestGetAndPurge(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	for i := range 5 {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), true, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	d, ok := q2.Get(false)
	if !ok || string(d.Msg.Body) != "m0" || d.Remaining != 4 {
		t.Fatalf("get: %v %+v", ok, d)
	}
	if _, u, _ := q1.Counts(); u != 1 {
		t.Fatalf("owner unacked %d", u)
	}
	q2.Requeue([]broker.Delivery{d})
	waitFor(t, 2*time.Second, "requeued get", nil, func() bool { r, u, _ := q1.Counts(); return r == 5 && u == 0 })
	d, ok = q2.Get(true)
	if !ok || string(d.Msg.Body) != "m0" || !d.Redelivered {
		t.Fatalf("no-ack get: %v %s %v", ok, d.Msg.Body, d.Redelivered)
	}
	if n := q2.Purge(); n != 4 {
		t.Fatalf("purged %d", n)
	}
	if _, ok := q2.Get(false); ok {
		t.Fatal("get after purge")
	}
}

// Deleting the queue cancels node 2's consumer once.
func TestDeleteCancelsRemoteConsumer(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	q2 := queueOf(t, ns[1], "q")
	c := newConsumer(1, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns[1].v.DeleteQueue("q", false, false, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "cancel", c.ch, func() bool { _, _, k := c.snapshot(); return k >= 1 })
	time.Sleep(100 * time.Millisecond)
	if _, _, k := c.snapshot(); k != 1 {
		t.Fatalf("%d cancels", k)
	}
}

// An exclusive consumer on the owner refuses node 2's consumer with the
// owner's error kind.
func TestConsumeRefusalKeepsKind(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	if err := q1.Consume(newConsumer(1, false), broker.ConsumeOptions{Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	err := q2.Consume(newConsumer(1, false), broker.ConsumeOptions{Prefetch: 1})
	if !errors.Is(err, broker.ErrAccessRefused) {
		t.Fatalf("err %v", err)
	}
}

// NodeDown requeues at once what a node's consumers held, without
// waiting for the lease, and cancels them.
func TestNodeDownRequeuesAtOnce(t *testing.T) {
	ns := newCluster(t, 2, func(c *Config) { c.LeaseTimeout = time.Minute })
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	for i := range 3 {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), false, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(3, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 3}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "3 unacked", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 3 })
	ns[0].f.NodeDown(2)
	if r, u, cons := q1.Counts(); r != 3 || u != 0 || cons != 0 {
		t.Fatalf("after NodeDown: %d/%d/%d", r, u, cons)
	}
	// Node 2 learns at its next keepalive that the owner dropped it.
	waitFor(t, 2*time.Second, "cancel", c.ch, func() bool { _, _, k := c.snapshot(); return k == 1 })
	ns[1].f.NodeDown(1) // and the client side's own: nothing left to drop
	if _, _, k := c.snapshot(); k != 1 {
		t.Fatalf("%d cancels", k)
	}
}

// Three nodes: node 3 publishes to node 1's queue while consumers on
// nodes 1, 2 and 3 compete for it; every message is delivered once, and
// each consumer sees its share in publish order.
func TestCompetingConsumersAcrossNodes(t *testing.T) {
	ns := newCluster(t, 3, nil)
	declare(t, ns[0], "q", nil)
	cs := make([]*consumer, 3)
	for i, nd := range ns {
		cs[i] = newConsumer(0, true)
		if err := queueOf(t, nd, "q").Consume(cs[i], broker.ConsumeOptions{NoAck: true}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 900
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range n {
		publish(t, ns[2], &s, "q", fmt.Sprintf("%04d", i), true, cf, uint64(i))
	}
	for i, err := range cf.wait(t, n, 5*time.Second) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	total := func() int {
		sum := 0
		for _, c := range cs {
			g, _, _ := c.snapshot()
			sum += len(g)
		}
		return sum
	}
	waitFor(t, 5*time.Second, "all delivered", nil, func() bool { return total() >= n })
	seen := map[string]bool{}
	for i, c := range cs {
		g, _, _ := c.snapshot()
		if len(g) == 0 {
			t.Errorf("consumer on node %d got nothing", i+1)
		}
		if !slices.IsSorted(g) {
			t.Errorf("consumer on node %d: out of order", i+1)
		}
		for _, b := range g {
			if seen[b] {
				t.Fatalf("%s delivered twice", b)
			}
			seen[b] = true
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct of %d", len(seen), n)
	}
	q1 := queueOf(t, ns[0], "q")
	waitFor(t, 2*time.Second, "owner drained", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
}

// Counts of many remote queues cost one request per owner, not one per
// queue.
func TestCountsBatchedPerOwner(t *testing.T) {
	counter := &countingTransport{}
	ns := newCluster(t, 2, func(c *Config) {
		if c.Self == 2 {
			counter.Transport = c.Transport
			c.Transport = counter
		}
	})
	const n = 40
	var s broker.RouteScratch
	for i := range n {
		name := fmt.Sprintf("q%d", i)
		declare(t, ns[0], name, nil)
		for range i % 3 {
			publish(t, ns[0], &s, name, "x", false, nil, 0)
		}
	}
	for i := range n {
		if r, _, _ := queueOf(t, ns[1], fmt.Sprintf("q%d", i)).Counts(); r != i%3 {
			t.Fatalf("q%d: ready %d", i, r)
		}
	}
	if got := counter.count(KindCounts); got != 1 {
		t.Fatalf("%d counts requests for %d queues", got, n)
	}
}

// The owner's memory alarm holds forwarded publishes as it blocks its own
// publishers; they are confirmed once it clears.
func TestOwnerAlarmHoldsForwardedPublishes(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	ns[0].b.MemoryAlarm().Set(true)
	cf := newConfirms()
	var s broker.RouteScratch
	publish(t, ns[1], &s, "q", "m", true, cf, 1)
	time.Sleep(200 * time.Millisecond) // nothing may happen meanwhile
	cf.mu.Lock()
	n := len(cf.got)
	cf.mu.Unlock()
	q1 := queueOf(t, ns[0], "q")
	if r, _, _ := q1.Counts(); n != 0 || r != 0 {
		t.Fatalf("during the alarm: %d outcomes, %d ready", n, r)
	}
	ns[0].b.MemoryAlarm().Set(false)
	if err := cf.wait(t, 1, 2*time.Second)[1]; err != nil {
		t.Fatalf("after the alarm: %v", err)
	}
	if r, _, _ := q1.Counts(); r != 1 {
		t.Fatalf("ready %d", r)
	}
}
