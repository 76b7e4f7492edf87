package server_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// quorumArgs declares a quorum queue with a delivery limit of 2.
var quorumArgs = amqp.Table{"x-queue-type": "quorum", "x-delivery-limit": int64(2)}

// publishConfirmed publishes bodies persistently and waits for every
// confirm, failing on a nack.
func publishConfirmed(t *testing.T, ch *amqp.Channel, queue string, bodies ...string) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, len(bodies)))
	for _, b := range bodies {
		if err := ch.Publish("", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(b)}); err != nil {
			t.Fatal(err)
		}
	}
	for range bodies {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish %d nacked", c.DeliveryTag)
			}
		case <-time.After(wait):
			t.Fatal("no confirm")
		}
	}
}

func next(t *testing.T, d <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case m, ok := <-d:
		if !ok {
			t.Fatal("consumer closed")
		}
		return m
	case <-time.After(wait):
		t.Fatal("no delivery")
	}
	return amqp.Delivery{}
}

// A single node (no cluster settings) takes x-queue-type quorum, as a
// one-node RabbitMQ cluster does: confirms, the quorum headers, the
// delivery limit, and the messages and their redelivered marks across a
// restart.
func TestSingleNodeQuorumQueue(t *testing.T) {
	s := testkit.Start(t)
	quorumDir := filepath.Join(s.Config.DataDir, "quorum")
	if _, err := os.Stat(quorumDir); !os.IsNotExist(err) {
		t.Fatalf("a single node without quorum queues has %s: %v", quorumDir, err)
	}
	c := s.Dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("qq", true, false, false, false, quorumArgs); err != nil {
		t.Fatal(err)
	}
	// The quorum type's own refusals still hold.
	bad, _ := c.Channel()
	_, err = bad.QueueDeclare("qq-transient", false, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.PreconditionFailed {
		t.Fatalf("a non-durable quorum queue: %v, want 406", err)
	}
	var bodies []string
	for i := range 10 {
		bodies = append(bodies, fmt.Sprintf("m%d", i))
	}
	publishConfirmed(t, ch, "qq", bodies...)

	cons, _ := c.Channel()
	_ = cons.Qos(3, 0, false)
	d, err := cons.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	m0, m1, m2 := next(t, d), next(t, d), next(t, d)
	if string(m0.Body) != "m0" || string(m1.Body) != "m1" || string(m2.Body) != "m2" || m0.Redelivered {
		t.Fatalf("first deliveries %s %s %s (redelivered %v), want m0 m1 m2 in order", m0.Body, m1.Body, m2.Body, m0.Redelivered)
	}
	_ = m0.Ack(false)
	_ = m1.Reject(true)      // a failed delivery: x-delivery-count
	_ = m2.Nack(false, true) // a plain return: x-acquired-count only
	seen := map[string]amqp.Delivery{}
	for len(seen) < 3 {
		m := next(t, d)
		seen[string(m.Body)] = m
	}
	r1, r2, m3 := seen["m1"], seen["m2"], seen["m3"]
	if !r1.Redelivered || r1.Headers["x-delivery-count"] != int64(1) || r1.Headers["x-acquired-count"] != int64(1) {
		t.Fatalf("m1 after reject: redelivered %v headers %v", r1.Redelivered, r1.Headers)
	}
	if !r2.Redelivered || r2.Headers["x-delivery-count"] != nil || r2.Headers["x-acquired-count"] != int64(1) {
		t.Fatalf("m2 after nack: redelivered %v headers %v", r2.Redelivered, r2.Headers)
	}
	if m3.Redelivered || m3.Headers["x-acquired-count"] != nil {
		t.Fatalf("m3: redelivered %v headers %v", m3.Redelivered, m3.Headers)
	}
	// m1 fails twice more: past the limit of 2 it is dropped.
	_ = r1.Reject(true)
	for {
		m := next(t, d)
		if string(m.Body) == "m1" {
			if m.Headers["x-delivery-count"] != int64(2) {
				t.Fatalf("m1 the third time: headers %v", m.Headers)
			}
			_ = m.Reject(true)
			break
		}
		seen[string(m.Body)] = m
	}
	// Held unacked across the restart: m2, m3 and whatever came since.
	for len(seen) < 4 {
		m := next(t, d)
		if string(m.Body) == "m1" {
			t.Fatal("m1 delivered past its delivery limit")
		}
		seen[string(m.Body)] = m
	}
	held := map[string]bool{}
	for b := range seen {
		if b != "m1" {
			held[b] = true
		}
	}
	_ = c.Close()

	s = s.Restart(t)
	c = s.Dial(t)
	ch, err = c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("qq", true, false, false, false, quorumArgs)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 8 { // m0 acked, m1 dropped
		t.Fatalf("%d messages after the restart, want 8", q.Messages)
	}
	_ = ch.Qos(20, 0, false)
	d, err = ch.Consume("qq", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 10; i++ {
		m := next(t, d)
		b := string(m.Body)
		if b != fmt.Sprintf("m%d", i) {
			t.Fatalf("after the restart got %s, want m%d (order kept)", b, i)
		}
		if m.Redelivered != held[b] {
			t.Fatalf("%s: redelivered %v, want %v (it was unacked at the restart)", b, m.Redelivered, held[b])
		}
		_ = m.Ack(false)
	}
	// Deleting the queue removes its group; a new one of the same name starts empty.
	if _, err := ch.QueueDelete("qq", false, false, false); err != nil {
		t.Fatal(err)
	}
	if q, err := ch.QueueDeclare("qq", true, false, false, false, quorumArgs); err != nil || q.Messages != 0 {
		t.Fatalf("redeclared: %+v %v", q, err)
	}
}
