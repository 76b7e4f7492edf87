package main

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A quorum queue on a single node (no cluster settings): every confirmed
// message survives kill -9, in order, and those a consumer held unacked
// come back marked redelivered.
func TestSingleNodeQuorumQueueSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	args := amqp.Table{"x-queue-type": "quorum"}
	if _, err := ch.QueueDeclare("qcrash", true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	_ = ch.Confirm(false)
	const n, held = 2000, 50
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := uint32(0); i < n; i++ {
		if err := ch.Publish("", "qcrash", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case cf := <-confirms:
			if !cf.Ack {
				t.Fatalf("nack %d", cf.DeliveryTag)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("confirms stopped")
		}
	}
	cons, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_ = cons.Qos(held, 0, false)
	d, err := cons.Consume("qcrash", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range held {
		select {
		case m := <-d:
			if got := checkBody(t, m.Body); got != uint32(i) {
				t.Fatalf("delivery %d is message %d", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d deliveries", i)
		}
	}
	kill9(t, s)
	_ = c.Close()

	s = startBinaryOn(t, dir)
	c, ch = dialChannel(t, s.url())
	defer c.Close()
	q, err := ch.QueueDeclare("qcrash", true, false, false, false, args)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != n {
		t.Fatalf("%d of %d confirmed messages after kill -9", q.Messages, n)
	}
	_ = ch.Qos(500, 0, false)
	d, err = ch.Consume("qcrash", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case m := <-d:
			if got := checkBody(t, m.Body); got != uint32(i) {
				t.Fatalf("position %d holds message %d", i, got)
			}
			if m.Redelivered != (i < held) {
				t.Fatalf("message %d: redelivered %v, want %v (held unacked at the kill: %v)", i, m.Redelivered, i < held, i < held)
			}
			_ = m.Ack(false)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages delivered after kill -9", i, n)
		}
	}
}
