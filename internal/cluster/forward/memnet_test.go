package forward

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// newMemCluster starts n nodes on one memnet network (the fault-injecting
// in-memory transport): drops, duplicates, delays, reordering and
// partitions apply to forwarding as to Raft.
func newMemCluster(t *testing.T, n int, net *memnet.Network, tweak func(*Config)) []*node {
	t.Helper()
	nodes := make([]*node, n)
	routes := make([]*route, n)
	eps := make([]*memnet.Endpoint, n)
	for i := range nodes {
		nodes[i] = &node{id: uint64(i + 1)}
		routes[i] = &route{}
		eps[i] = net.Endpoint(nodes[i].id)
		eps[i].SetHandler(routes[i])
	}
	startNodes(t, nodes, routes, func(nd *node) transport.Transport { return eps[nd.id-1] }, tweak)
	t.Cleanup(func() {
		for _, e := range eps {
			_ = e.Close()
		}
	})
	return nodes
}

// ackingConsumer consumes q on its node, acking what it gets (requeueing
// every seventh), until stop.
func ackingConsumer(t *testing.T, q *broker.Queue, prefetch int, stop <-chan struct{}, wg *sync.WaitGroup) *consumer {
	t.Helper()
	c := newConsumer(prefetch, false)
	for try := 0; ; try++ {
		err := q.Consume(c, broker.ConsumeOptions{Prefetch: prefetch})
		if err == nil {
			break
		}
		if try == 20 {
			t.Fatal(err)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			select {
			case <-stop:
				return
			case <-c.ch:
			case <-time.After(5 * time.Millisecond):
			}
			for _, d := range c.take() {
				n++
				if n%7 == 0 {
					q.Requeue([]broker.Delivery{d})
				} else {
					q.Ack(d)
				}
			}
			q.Dispatch()
		}
	}()
	return c
}

// On a network that drops, duplicates, delays and reorders messages,
// publishes from node 2 to node 1's queue and consumers on nodes 2 and 3:
// every confirmed message is delivered, and the owner drains.
func TestMemnetFaultyNetwork(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	net := memnet.New(nil, seed)
	ns := newMemCluster(t, 3, net, func(c *Config) { c.LeaseTimeout = 3 * time.Second })
	declare(t, ns[0], "q", nil)
	net.Drop(0.05)
	net.Duplicate(0.05)
	net.Reorder(0.1, 3*time.Millisecond)
	net.Delay(0, time.Millisecond)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	c2 := ackingConsumer(t, queueOf(t, ns[1], "q"), 10, stop, &wg)
	c3 := ackingConsumer(t, queueOf(t, ns[2], "q"), 0, stop, &wg)
	defer func() { close(stop); wg.Wait() }()

	const n = 1000
	cf := newConfirms()
	var s broker.RouteScratch
	for i := range n {
		publish(t, ns[1], &s, "q", fmt.Sprintf("%05d", i), i%2 == 0, cf, uint64(i))
		if i%50 == 49 {
			cf.wait(t, i+1, 10*time.Second)
		}
	}
	outcomes := cf.wait(t, n, 10*time.Second)
	q1 := queueOf(t, ns[0], "q")
	waitFor(t, 30*time.Second, "every confirmed message delivered and the owner drained", nil, func() bool {
		got := map[string]bool{}
		for _, c := range []*consumer{c2, c3} {
			g, _, _ := c.snapshot()
			for _, b := range g {
				got[b] = true
			}
		}
		for i, err := range outcomes {
			if err == nil && !got[fmt.Sprintf("%05d", i)] {
				return false
			}
		}
		r, u, _ := q1.Counts()
		return r == 0 && u == 0
	})
	nacked := 0
	for _, err := range outcomes {
		if err != nil {
			nacked++
		}
	}
	t.Logf("nacked %d of %d; owner %+v; node 2 %+v", nacked, n, ns[0].f.Stats(), ns[1].f.Stats())
	if nacked > n/2 {
		t.Fatalf("%d of %d nacked", nacked, n)
	}
}

// A partition longer than the lease: the owner requeues what node 2's
// consumer held and node 2 cancels it; publishes from node 2 are nacked
// meanwhile, never confirmed; after healing, node 2 publishes and
// consumes again.
func TestMemnetPartition(t *testing.T) {
	net := memnet.New(nil, 1)
	ns := newMemCluster(t, 2, net, nil)
	declare(t, ns[0], "q", nil)
	var s broker.RouteScratch
	for i := range 4 {
		publish(t, ns[0], &s, "q", fmt.Sprintf("m%d", i), true, nil, 0)
	}
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(4, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 4}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "4 unacked", c.ch, func() bool { _, u, _ := c.snapshot(); return u == 4 })

	net.Isolate(2)
	cf := newConfirms()
	publish(t, ns[1], &s, "q", "during", true, cf, 1)
	if err := cf.wait(t, 1, 5*time.Second)[1]; err == nil {
		t.Fatal("a publish across the partition was confirmed")
	}
	waitFor(t, 3*time.Second, "owner requeued", nil, func() bool { r, u, cons := q1.Counts(); return r == 4 && u == 0 && cons == 0 })
	waitFor(t, 3*time.Second, "node 2 cancelled its consumer", c.ch, func() bool { _, _, k := c.snapshot(); return k == 1 })
	// A late ack from before the partition changes nothing.
	q2.Ack(c.take()...)

	net.Heal()
	cf2 := newConfirms()
	publish(t, ns[1], &s, "q", "after", true, cf2, 1)
	if err := cf2.wait(t, 1, 5*time.Second)[1]; err != nil {
		t.Fatalf("publish after healing: %v", err)
	}
	c2 := newConsumer(0, true)
	if err := q2.Consume(c2, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "all 5 on node 2", c2.ch, func() bool { g, _, _ := c2.snapshot(); return len(g) == 5 })
	g, _, _ := c2.snapshot()
	want := []string{"m0", "m1", "m2", "m3", "after"}
	for i := range want {
		if g[i] != want[i] {
			t.Fatalf("after healing: %v", g)
		}
	}
}
