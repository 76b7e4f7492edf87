package amqp_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

func TestDurableDefinitionsSurviveRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("orders", "topic", true, false, false, false, amqp.Table{"alternate-exchange": "unrouted"}))
	must(ch.ExchangeDeclare("unrouted", "fanout", true, false, false, false, nil))
	must(ch.ExchangeDeclare("audit", "fanout", true, false, false, false, nil))
	must(ch.ExchangeDeclare("scratch", "fanout", false, false, false, false, nil))
	_, err := ch.QueueDeclare("orders.eu", true, false, false, false, amqp.Table{"x-max-priority": int32(5), "x-message-ttl": int32(60000)})
	must(err)
	_, err = ch.QueueDeclare("lost", true, false, false, false, nil)
	must(err)
	_, err = ch.QueueDeclare("transient-q", false, false, false, false, nil)
	must(err)
	must(ch.QueueBind("orders.eu", "eu.*", "orders", false, nil))
	must(ch.QueueBind("lost", "", "unrouted", false, nil))
	must(ch.ExchangeBind("audit", "#", "orders", false, nil))
	_, err = ch.QueueDelete("lost", false, false, false)
	must(err)

	s = s.Restart(t)
	_, ch = s.Channel(t)
	must(ch.ExchangeDeclarePassive("orders", "topic", true, false, false, false, nil))
	must(ch.ExchangeDeclarePassive("audit", "fanout", true, false, false, false, nil))
	// The same declaration with the same arguments is still equivalent.
	must(ch.ExchangeDeclare("orders", "topic", true, false, false, false, amqp.Table{"alternate-exchange": "unrouted"}))
	q, err := ch.QueueDeclare("orders.eu", true, false, false, false, amqp.Table{"x-max-priority": int32(5), "x-message-ttl": int32(60000)})
	must(err)
	if q.Messages != 0 {
		t.Fatal(q.Messages)
	}
	publish(t, ch, "orders", "eu.de", body("routed after restart"))
	testkit.Eventually(t, wait, "binding restored", func() bool { return queueLen(t, ch, "orders.eu") == 1 })
	for _, gone := range []string{"transient-q", "lost"} {
		_, err = ch.QueueDeclarePassive(gone, false, false, false, false, nil)
		expectCode(t, err, amqp.NotFound)
		_, ch = s.Channel(t)
	}
	expectCode(t, ch.ExchangeDeclarePassive("scratch", "fanout", false, false, false, false, nil), amqp.NotFound)
}

func TestPersistentMessagesSurviveRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("jobs", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 100))
	ts := time.Unix(1700000000, 0)
	for i := 0; i < 10; i++ {
		publish(t, ch, "", "jobs", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint(i)),
			MessageId: fmt.Sprint("m", i), Timestamp: ts, Headers: amqp.Table{"n": int32(i)}})
	}
	publish(t, ch, "", "jobs", amqp.Publishing{DeliveryMode: amqp.Transient, Body: []byte("transient")})
	for i := 0; i < 11; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatalf("nack for %d", c.DeliveryTag)
		}
	}
	// Ack 0 and 1; deliver 2 and 3 without acking; leave the rest.
	_, cons := s.Channel(t)
	for i := 0; i < 4; i++ {
		m, ok, err := cons.Get("jobs", false)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if i < 2 {
			_ = m.Ack(false)
		}
	}
	time.Sleep(100 * time.Millisecond) // acks are recorded with the next commit

	s = s.Restart(t)
	_, ch = s.Channel(t)
	if n := queueLen(t, ch, "jobs"); n != 8 {
		t.Fatalf("%d messages after restart, want 8 (10 persistent - 2 acked; the transient one is gone)", n)
	}
	d := consume(t, ch, "jobs", true)
	for i := 2; i < 10; i++ {
		m := testkit.Receive(t, d, wait)
		if string(m.Body) != fmt.Sprint(i) || m.MessageId != fmt.Sprint("m", i) || m.Headers["n"] != int32(i) ||
			!m.Timestamp.Equal(ts) || m.DeliveryMode != amqp.Persistent {
			t.Fatalf("message %d came back as %q %+v", i, m.Body, m)
		}
		if m.Redelivered != (i < 4) {
			t.Errorf("message %d redelivered=%v", i, m.Redelivered)
		}
	}
	testkit.NoDelivery(t, d, 100*time.Millisecond)
}

func TestTTLCountsFromOriginalPublishAcrossRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("ttl", true, false, false, false, amqp.Table{"x-message-ttl": int32(1500)}); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", "ttl", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("old")})
	time.Sleep(1000 * time.Millisecond)
	s = s.Restart(t)
	_, ch = s.Channel(t)
	publish(t, ch, "", "ttl", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("new")})
	// "old" has 0.5 s left, not 1.5 s: it must go well before "new".
	testkit.Eventually(t, 1200*time.Millisecond, "old message expired on its original clock", func() bool { return queueLen(t, ch, "ttl") == 1 })
	if got := getBody(t, ch, "ttl"); got != "new" {
		t.Fatal(got)
	}
}

func TestLargeDurableBacklogPagesToDisk(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("backlog", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 20000))
	payload := make([]byte, 1024)
	const n = 20000 // 20 MB: five times the queue's 4 MiB memory share
	for i := 0; i < n; i++ {
		copy(payload, fmt.Sprintf("%08d", i))
		publish(t, ch, "", "backlog", amqp.Publishing{DeliveryMode: amqp.Persistent, Body: payload})
	}
	for i := 0; i < n; i++ {
		if c := <-confirms; !c.Ack {
			t.Fatal("nack")
		}
	}
	// QueuedBytes is the accounted memory (broker/memory.go): ~1.5 KB per
	// 1 KiB message in memory, 250 bytes per paged-out one. Holding every
	// body would be ~30 MB; paging leaves ~10 MB (4 MiB of bodies).
	if mem := s.Broker.Stats().QueuedBytes; mem > 16<<20 {
		t.Fatalf("%d bytes of queued memory for a 20 MB durable backlog: bodies not paged out", mem)
	}
	d := consume(t, ch, "backlog", true)
	var got []string
	for i := 0; i < n; i++ {
		got = append(got, string(testkit.Receive(t, d, wait).Body[:8]))
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("%08d", i)
	}
	if !slices.Equal(got, want) {
		t.Fatal("paged messages came back out of order")
	}
}

func TestDiskAlarmBlocksPublishersUntilSpaceReturns(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	blocked := c.NotifyBlocked(make(chan amqp.Blocking, 4))
	q := declare(t, ch, nil)
	publish(t, ch, "", q, body("before"))
	s.SetDiskFreeLimit(1 << 62) // more than any disk has: the alarm trips
	select {
	case b := <-blocked:
		if !b.Active || b.Reason != "low on disk" {
			t.Fatalf("%+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection.blocked on the disk alarm")
	}
	publish(t, ch, "", q, body("held back")) // waits in the socket
	time.Sleep(300 * time.Millisecond)
	_, other := s.Channel(t)
	if n := queueLen(t, other, q); n != 1 {
		t.Fatalf("%d messages: a publish got through the disk alarm", n)
	}
	s.SetDiskFreeLimit(1) // space "returns"
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("%+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection.unblocked")
	}
	testkit.Eventually(t, wait, "held publish lands", func() bool { return queueLen(t, other, q) == 2 })
}
