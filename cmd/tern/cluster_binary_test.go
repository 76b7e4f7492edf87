//go:build clusterwip

package main

import (
	"regexp"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestQuorumQueueSurvivesKill9OfItsLeader: three tern processes; a quorum
// queue declared on one node is visible on another; a publisher with
// confirms on a node that does not lead the queue keeps publishing while
// kill -9 hits the leader; a surviving node then delivers every confirmed
// message (once, or again marked redelivered), none missing, in the order
// published.
func TestQuorumQueueSurvivesKill9OfItsLeader(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	byName := map[string]*ternNode{}
	for _, nd := range nodes {
		byName[nd.name] = nd
	}

	c1, ch1 := dialChannel(t, nodes[0].url())
	if _, err := ch1.QueueDeclare("orders", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	_ = c1.Close()
	// Declare-ok came after the metadata group committed the queue, so
	// every node knows it now.
	for _, nd := range nodes[1:] {
		c, ch := dialChannel(t, nd.url())
		if _, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil); err != nil {
			t.Fatalf("%s does not know the queue declared on n1: %v", nd.name, err)
		}
		_ = c.Close()
	}

	leader := byName[queueLeader(t, nodes[0], "orders", 20*time.Second)]
	var via, survivor *ternNode
	for _, nd := range nodes {
		if nd != leader {
			if via == nil {
				via = nd
			} else {
				survivor = nd
			}
		}
	}
	t.Logf("queue leader %s; publishing through %s", leader.name, via.name)

	pc, pch := dialChannel(t, via.url())
	defer pc.Close()
	if err := pch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	confirms := pch.NotifyPublish(make(chan amqp.Confirmation, n))
	var mu sync.Mutex
	acked, nacked := map[uint32]bool{}, 0
	confirmDone := make(chan struct{})
	go func() {
		defer close(confirmDone)
		for cf := range confirms {
			mu.Lock()
			if cf.Ack {
				acked[uint32(cf.DeliveryTag-1)] = true
			} else {
				nacked++
			}
			done := len(acked)+nacked == n
			mu.Unlock()
			if done {
				return
			}
		}
	}()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Kill the leader once a third of the messages are confirmed.
		nd := leader
		nd.waitFor(60*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= n/3
		})
		nd.kill9(t)
	}()
	for i := uint32(0); i < n; i++ {
		if err := pch.Publish("", "orders", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}); err != nil {
			t.Fatalf("publish %d through %s: %v", i, via.name, err)
		}
		if i%100 == 99 {
			time.Sleep(5 * time.Millisecond) // spread the publishes over the failover
		}
	}
	<-killed
	select {
	case <-confirmDone:
	case <-time.After(60 * time.Second):
		mu.Lock()
		t.Fatalf("after 60s only %d acks and %d nacks of %d publishes", len(acked), nacked, n)
	}
	mu.Lock()
	t.Logf("%d confirmed, %d nacked across the failover", len(acked), nacked)
	if len(acked) < n/3 {
		t.Fatalf("only %d confirmed", len(acked))
	}
	mu.Unlock()

	newLeader := queueLeader(t, survivor, "orders", 20*time.Second)
	if newLeader == leader.name {
		t.Fatalf("the killed node %s still leads", leader.name)
	}
	// Consume from the node that did not carry the publishes.
	cc, cch := dialChannel(t, survivor.url())
	defer cc.Close()
	if err := cch.Qos(200, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := cch.Consume("orders", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	last := int64(-1)
	for len(seen) < len(acked) {
		select {
		case m, ok := <-d:
			if !ok {
				t.Fatal("consumer closed")
			}
			v := checkBody(t, m.Body)
			if seen[v] && !m.Redelivered {
				t.Fatalf("message %d delivered twice, the second time not marked redelivered", v)
			}
			if !m.Redelivered && int64(v) <= last {
				t.Fatalf("message %d after %d: publisher order lost", v, last)
			}
			if !m.Redelivered {
				last = int64(v)
			}
			seen[v] = true
			if err := m.Ack(false); err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			missing := 0
			for v := range acked {
				if !seen[v] {
					missing++
				}
			}
			t.Fatalf("%d of %d confirmed messages consumed from %s; %d missing", len(seen), len(acked), survivor.name, missing)
		}
	}
	for v := range acked {
		if !seen[v] {
			t.Fatalf("confirmed message %d lost", v)
		}
	}

	// The killed node comes back on its data and catches up.
	leader.start(t)
	leader.waitServing(t, 60*time.Second)
	c, ch := dialChannel(t, leader.url())
	defer c.Close()
	if _, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil); err != nil {
		t.Fatalf("%s after its restart: %v", leader.name, err)
	}
}

var refusedPeerLine = regexp.MustCompile(`(?i)refus.*(secret|handshake)|(secret|handshake).*refus`)

// TestWrongSecretIsRefused: a fourth node with the wrong secret cannot join;
// the cluster logs why and keeps serving.
func TestWrongSecretIsRefused(t *testing.T) {
	// n4 is in everyone's membership (a standby, so the three voters make
	// the quorum) but presents another secret.
	nodes := newTestCluster(t, 4, 1)
	for _, nd := range nodes[:3] {
		nd.start(t)
	}
	for _, nd := range nodes[:3] {
		nd.waitServing(t, 60*time.Second)
	}
	bad := nodes[3]
	bad.args = append(bad.args, "--cluster-secret-file", writeSecret(t, "the-wrong-secret-0123456789abcdef")) // the last flag wins
	bad.start(t)
	line := nodes[0].waitLog(t, refusedPeerLine, 20*time.Second)
	t.Logf("n1: %s", line)

	c, ch := dialChannel(t, nodes[1].url())
	defer c.Close()
	if _, err := ch.QueueDeclare("still-serving", true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("the cluster stopped serving after a bad peer: %v", err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	conf, err := ch.PublishWithDeferredConfirm("", "still-serving", false, false, amqp.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := conf.WaitContext(t.Context()); !ok || err != nil {
		t.Fatalf("publish not confirmed: %v %v", ok, err)
	}
	st, err := nodes[0].clusterStatus(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Nodes {
		if m.Name == bad.name && m.Reachable {
			t.Fatalf("n1 reports the node with the wrong secret reachable: %+v", st.Nodes)
		}
	}
}
