package amqp_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

func TestFIFOOrder(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	var want []string
	for i := 0; i < 500; i++ {
		want = append(want, fmt.Sprint(i))
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	if got := bodies(t, consume(t, ch, q, true), 500); !slices.Equal(got, want) {
		t.Fatal("messages out of order")
	}
}

func TestCompetingConsumersRoundRobin(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	_, ch2 := s.Channel(t)
	d1, d2 := consume(t, ch, q, true), consume(t, ch2, q, true)
	for i := 0; i < 10; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	a, b := bodies(t, d1, 5), bodies(t, d2, 5)
	if !slices.Equal(a, []string{"0", "2", "4", "6", "8"}) || !slices.Equal(b, []string{"1", "3", "5", "7", "9"}) {
		t.Fatalf("not round-robin: %v %v", a, b)
	}
}

func TestPrefetchLimitsUnacked(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if err := ch.Qos(3, 0, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	d := consume(t, ch, q, false)
	var got []amqp.Delivery
	for i := 0; i < 3; i++ {
		got = append(got, testkit.Receive(t, d, wait))
	}
	testkit.NoDelivery(t, d, 200*time.Millisecond)
	if err := got[0].Ack(false); err != nil {
		t.Fatal(err)
	}
	if m := testkit.Receive(t, d, wait); string(m.Body) != "3" {
		t.Fatalf("after one ack got %q", m.Body)
	}
	testkit.NoDelivery(t, d, 100*time.Millisecond)
}

func TestGlobalQosLimitsTheChannel(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q1, q2 := declare(t, ch, nil), declare(t, ch, nil)
	for i := 0; i < 5; i++ {
		publish(t, ch, "", q1, body("a"))
		publish(t, ch, "", q2, body("b"))
	}
	if err := ch.Qos(4, 0, true); err != nil {
		t.Fatal(err)
	}
	d1, d2 := consume(t, ch, q1, false), consume(t, ch, q2, false)
	merged := make(chan amqp.Delivery, 10)
	for _, d := range []<-chan amqp.Delivery{d1, d2} {
		go func() {
			for m := range d {
				merged <- m
			}
		}()
	}
	if n := len(drain(merged, 300*time.Millisecond)); n != 4 {
		t.Fatalf("%d unacked across the channel, global prefetch is 4", n)
	}
}

func TestNackAndRejectRequeueSetRedelivered(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, body("a"))
	publish(t, ch, "", q, body("b"))
	d := consume(t, ch, q, false)
	a := testkit.Receive(t, d, wait)
	b := testkit.Receive(t, d, wait)
	if a.Redelivered || b.Redelivered {
		t.Fatal("first delivery marked redelivered")
	}
	_ = b.Nack(true, true) // multiple: a and b go back together, in order
	a2, b2 := testkit.Receive(t, d, wait), testkit.Receive(t, d, wait)
	if string(a2.Body) != "a" || string(b2.Body) != "b" || !a2.Redelivered || !b2.Redelivered {
		t.Fatalf("requeued %q(%v) %q(%v), want a, b in order, redelivered", a2.Body, a2.Redelivered, b2.Body, b2.Redelivered)
	}
	_ = b2.Reject(true)
	b3 := testkit.Receive(t, d, wait)
	if string(b3.Body) != "b" || !b3.Redelivered {
		t.Fatalf("rejected with requeue: got %q", b3.Body)
	}
	_ = b3.Nack(true, false) // multiple: a and b, dropped
	// The passive declare on the same channel is handled after the nack.
	if n := queueLen(t, ch, q); n != 0 {
		t.Fatalf("%d messages left after nack without requeue", n)
	}
}

func TestUnknownDeliveryTagClosesChannel406(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Ack(42, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-closed:
		ae := expectCode(t, err, amqp.PreconditionFailed)
		if ae.Reason != "PRECONDITION_FAILED - unknown delivery tag 42" {
			t.Errorf("reason %q", ae.Reason)
		}
	case <-time.After(wait):
		t.Fatal("channel stayed open")
	}
}

func TestBasicGet(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if _, ok, err := ch.Get(q, false); ok || err != nil {
		t.Fatalf("get on empty queue: %v %v", ok, err)
	}
	publish(t, ch, "", q, body("one"))
	publish(t, ch, "", q, body("two"))
	testkit.Eventually(t, wait, "queued", func() bool { return queueLen(t, ch, q) == 2 })
	m, ok, err := ch.Get(q, false)
	if err != nil || !ok || string(m.Body) != "one" || m.MessageCount != 1 {
		t.Fatalf("get: %v %v %q count %d", ok, err, m.Body, m.MessageCount)
	}
	_ = m.Nack(false, true)
	m, _, _ = ch.Get(q, false)
	if string(m.Body) != "one" || !m.Redelivered {
		t.Fatal("requeued get not redelivered in place")
	}
	_ = m.Ack(false)
}

func TestBasicRecoverRedeliversUnacked(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, body("x"))
	d := consume(t, ch, q, false)
	testkit.Receive(t, d, wait)
	//lint:ignore SA1019 basic.recover is part of the protocol under test
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	if m := testkit.Receive(t, d, wait); !m.Redelivered || string(m.Body) != "x" {
		t.Fatal("recover did not redeliver")
	}
}

func TestUnackedReturnInOrderWhenChannelCloses(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	q := declare(t, ch, nil)
	for i := 0; i < 6; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	consCh, _ := c.Channel()
	d := consume(t, consCh, q, false)
	got := bodies(t, d, 6)
	if !slices.Equal(got, []string{"0", "1", "2", "3", "4", "5"}) {
		t.Fatal(got)
	}
	_ = consCh.Close()
	testkit.Eventually(t, wait, "requeue", func() bool { return queueLen(t, ch, q) == 6 })
	for i := 0; i < 6; i++ {
		m, _, _ := ch.Get(q, true)
		if string(m.Body) != fmt.Sprint(i) || !m.Redelivered {
			t.Fatalf("message %d: %q redelivered=%v", i, m.Body, m.Redelivered)
		}
	}
}

func TestUnackedReturnWhenConnectionDies(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q, err := ch.QueueDeclare("work", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		publish(t, ch, "", q.Name, body(fmt.Sprint(i)))
	}
	// A consumer on a raw socket that vanishes without closing.
	c2 := s.Dial(t)
	ch2, _ := c2.Channel()
	d := consume(t, ch2, q.Name, false)
	bodies(t, d, 3)
	_ = c2.Close()
	testkit.Eventually(t, wait, "requeue", func() bool { return queueLen(t, ch, q.Name) == 3 })
	got := bodies(t, consume(t, ch, q.Name, true), 3)
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatal(got)
	}
}

func TestExclusiveQueue(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("mine", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	_, other := s.Channel(t)
	_, err := other.QueueDeclarePassive("mine", false, false, true, false, nil)
	expectCode(t, err, amqp.ResourceLocked)
	_, other = s.Channel(t)
	_, err = other.Consume("mine", "", true, false, false, false, nil)
	expectCode(t, err, amqp.ResourceLocked)
	_ = c.Close()
	_, other = s.Channel(t)
	testkit.Eventually(t, wait, "exclusive queue deleted with its connection", func() bool {
		_, err := other.QueueDeclarePassive("mine", false, false, false, false, nil)
		if err != nil {
			_, other = s.Channel(t)
		}
		return amqpCode(err) == amqp.NotFound
	})
}

func TestAutoDeleteQueueGoesWithLastConsumer(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("temp", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("temp", "c1", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	_, err := ch.QueueDeclarePassive("temp", false, true, false, false, nil)
	expectCode(t, err, amqp.NotFound)
}

func TestServerNamedQueue(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.Name, "amq.gen-") || len(q.Name) < 20 {
		t.Fatalf("server-named queue %q", q.Name)
	}
	_, err = ch.QueueDeclare("amq.custom", false, true, true, false, nil)
	expectCode(t, err, amqp.AccessRefused)
}

func TestQueueRedeclareWithDifferentArgs406(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("q", false, false, false, false, amqp.Table{"x-message-ttl": int32(1000)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q", false, false, false, false, amqp.Table{"x-message-ttl": int64(1000)}); err != nil {
		t.Fatal("equivalent redeclare refused:", err)
	}
	_, err := ch.QueueDeclare("q", false, false, false, false, amqp.Table{"x-message-ttl": int32(2000)})
	ae := expectCode(t, err, amqp.PreconditionFailed)
	if !strings.Contains(ae.Reason, "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/'") {
		t.Errorf("reason %q", ae.Reason)
	}
}

func TestQueuePurgeAndDeleteConditions(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	q := declare(t, ch, nil)
	for i := 0; i < 3; i++ {
		publish(t, ch, "", q, body("x"))
	}
	testkit.Eventually(t, wait, "queued", func() bool { return queueLen(t, ch, q) == 3 })
	_, err := ch.QueueDelete(q, false, true, false)
	expectCode(t, err, amqp.PreconditionFailed)
	ch, _ = c.Channel()
	if n, err := ch.QueuePurge(q, false); err != nil || n != 3 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := ch.Consume(q, "busy", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDelete(q, true, false, false)
	expectCode(t, err, amqp.PreconditionFailed)
	ch, _ = c.Channel()
	if _, err := ch.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete("never-existed", false, false, false); err != nil {
		t.Fatal("deleting a missing queue must succeed, as in RabbitMQ:", err)
	}
}

func TestConsumerCancelNotificationOnQueueDelete(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	cancels := ch.NotifyCancel(make(chan string, 1))
	if _, err := ch.Consume(q, "watcher", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, ch2 := s.Channel(t)
	if _, err := ch2.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "watcher" {
			t.Fatal(tag)
		}
	case <-time.After(wait):
		t.Fatal("no basic.cancel")
	}
}

func TestExclusiveConsumer(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if _, err := ch.Consume(q, "", true, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_, ch2 := s.Channel(t)
	_, err := ch2.Consume(q, "", true, false, false, false, nil)
	expectCode(t, err, amqp.AccessRefused)
}
