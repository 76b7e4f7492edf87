package main

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// defsModel is what a prefix of defsStep's sequence leaves: exchanges,
// queues and queue bindings (queue → its exchange).
type defsModel struct {
	exchanges, queues, bound map[int]bool
}

// defsStep runs (with ch != nil) or models step i of a fixed sequence of
// definition changes. Group g = i/4 declares exchange dx-g and queue dq-g,
// binds them with key k.g, then deletes queue dq-(g-1) (odd g) or unbinds
// it and deletes exchange dx-(g-1) (even g).
func defsStep(ch *amqp.Channel, m *defsModel, i int) error {
	g := i / 4
	x, q := fmt.Sprintf("dx-%d", g), fmt.Sprintf("dq-%d", g)
	px, pq := fmt.Sprintf("dx-%d", g-1), fmt.Sprintf("dq-%d", g-1)
	var err error
	switch i % 4 {
	case 0:
		if ch != nil {
			err = ch.ExchangeDeclare(x, "topic", true, false, false, false, nil)
		}
		m.exchanges[g] = true
	case 1:
		if ch != nil {
			_, err = ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-max-length": int32(100 + g)})
		}
		m.queues[g] = true
	case 2:
		if ch != nil {
			err = ch.QueueBind(q, fmt.Sprintf("k.%d", g), x, false, nil)
		}
		m.bound[g] = true
	case 3:
		if g == 0 {
			return nil
		}
		if g%2 == 1 {
			if ch != nil {
				_, err = ch.QueueDelete(pq, false, false, false)
			}
			delete(m.queues, g-1)
			delete(m.bound, g-1)
			return err
		}
		if ch != nil {
			err = ch.QueueUnbind(pq, fmt.Sprintf("k.%d", g-1), px, nil)
		}
		if err == nil && ch != nil {
			err = ch.ExchangeDelete(px, false, false)
		}
		delete(m.bound, g-1)
		delete(m.exchanges, g-1)
	}
	return err
}

// halfOfStep is the model after change n-1 and the first half of change n
// when change n is the two-method "unbind, then delete the exchange" (even
// groups): a kill between its unbind-ok and its exchange.delete leaves the
// unbind acknowledged and the exchange still there.
func halfOfStep(n int) *defsModel {
	m := modelAfter(n)
	if g := n / 4; n%4 == 3 && g > 0 && g%2 == 0 {
		delete(m.bound, g-1)
	}
	return m
}

func modelAfter(n int) *defsModel {
	m := &defsModel{exchanges: map[int]bool{}, queues: map[int]bool{}, bound: map[int]bool{}}
	for i := range n {
		_ = defsStep(nil, m, i)
	}
	return m
}

// observeDefs reads groups 0..groups-1 back from a server: which exchanges
// and queues exist and which queues get a message published to their
// exchange with their key.
func observeDefs(t *testing.T, url string, groups int) *defsModel {
	t.Helper()
	c, ch := dialChannel(t, url)
	defer c.Close()
	got := &defsModel{exchanges: map[int]bool{}, queues: map[int]bool{}, bound: map[int]bool{}}
	reopen := func() {
		var err error
		if ch, err = c.Channel(); err != nil {
			t.Fatal(err)
		}
	}
	for g := range groups {
		if err := ch.ExchangeDeclarePassive(fmt.Sprintf("dx-%d", g), "topic", true, false, false, false, nil); err == nil {
			got.exchanges[g] = true
		} else {
			reopen()
		}
		if _, err := ch.QueueDeclarePassive(fmt.Sprintf("dq-%d", g), true, false, false, false, nil); err == nil {
			got.queues[g] = true
		} else {
			reopen()
		}
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	for g := range groups {
		if !got.exchanges[g] || !got.queues[g] {
			continue
		}
		if err := ch.Publish(fmt.Sprintf("dx-%d", g), fmt.Sprintf("k.%d", g), false, false, amqp.Publishing{Body: []byte("probe")}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-confirms: // routed (or dropped) before the confirm
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm for a probe")
		}
		q, err := ch.QueueDeclarePassive(fmt.Sprintf("dq-%d", g), true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		got.bound[g] = q.Messages == 1
		if !got.bound[g] {
			delete(got.bound, g)
		}
	}
	return got
}

func sameModel(a, b *defsModel) bool {
	eq := func(x, y map[int]bool) bool {
		if len(x) != len(y) {
			return false
		}
		for k := range x {
			if !y[k] {
				return false
			}
		}
		return true
	}
	return eq(a.exchanges, b.exchanges) && eq(a.queues, b.queues) && eq(a.bound, b.bound)
}

// TestKill9KeepsTheLastAcknowledgedDefinitionChange runs declares, binds,
// unbinds and deletes against the real binary and kills it with SIGKILL
// at a random moment: after a restart the definitions are exactly those
// of every acknowledged change, plus at most the one in flight.
func TestKill9KeepsTheLastAcknowledgedDefinitionChange(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	defer c.Close()
	const steps = 400
	var acked atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := modelAfter(0)
		for i := range steps {
			if defsStep(ch, m, i) != nil {
				return
			}
			acked.Store(int64(i + 1))
		}
	}()
	target := int64(40 + rand.IntN(300))
	deadline := time.After(60 * time.Second)
	for acked.Load() < target {
		select {
		case <-deadline:
			t.Fatalf("only %d of %d changes acknowledged in 60s", acked.Load(), target)
		case <-time.After(time.Millisecond):
		}
	}
	kill9(t, s)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not notice the kill")
	}
	n := int(acked.Load())

	s = startBinaryOn(t, dir)
	groups := n/4 + 2
	got := observeDefs(t, s.url(), groups)
	if !sameModel(got, modelAfter(n)) && (n == steps || (!sameModel(got, modelAfter(n+1)) && !sameModel(got, halfOfStep(n)))) {
		t.Fatalf("after kill -9 with %d changes acknowledged: got %+v\nwant %+v (or the next change applied too)", n, got, modelAfter(n))
	}
	t.Logf("%d changes acknowledged before kill -9; all there after the restart", n)
}

// TestKill9RightAfterTheLastDefinitionChange kills the binary right after a
// sequence's last reply: every change is there after the restart, and a
// second restart (from the snapshot the first one wrote) agrees.
func TestKill9RightAfterTheLastDefinitionChange(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	const steps = 99 // ends on a bind
	m := modelAfter(0)
	for i := range steps {
		if err := defsStep(ch, m, i); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	kill9(t, s)
	_ = c.Close()
	for range 2 {
		s = startBinaryOn(t, dir)
		if got := observeDefs(t, s.url(), steps/4+2); !sameModel(got, m) {
			t.Fatalf("got %+v\nwant %+v", got, m)
		}
		kill9(t, s)
	}
}
