package amqp_test

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

func declareStream(t *testing.T, ch *amqp.Channel, name string, args amqp.Table) {
	t.Helper()
	a := amqp.Table{"x-queue-type": "stream"}
	for k, v := range args {
		a[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, a); err != nil {
		t.Fatal(err)
	}
}

// publishConfirmed publishes bodies prefix0..prefixN-1 and waits for every confirm.
func publishConfirmed(t *testing.T, ch *amqp.Channel, exchange, key string, from, n int, headers func(i int) amqp.Table) {
	t.Helper()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := from; i < from+n; i++ {
		var h amqp.Table
		if headers != nil {
			h = headers(i)
		}
		if err := ch.Publish(exchange, key, false, false, amqp.Publishing{Body: []byte(fmt.Sprint(i)), Headers: h}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatal("nack")
			}
		case <-time.After(wait):
			t.Fatal("confirm missing")
		}
	}
}

func consumeStream(t *testing.T, c *amqp.Connection, stream string, args amqp.Table) <-chan amqp.Delivery {
	t.Helper()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(50, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(stream, "", false, false, false, false, args)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readStream receives n deliveries, acking each, and returns bodies and offsets.
func readStream(t *testing.T, d <-chan amqp.Delivery, n int) (bodies []string, offsets []int64) {
	t.Helper()
	for i := 0; i < n; i++ {
		m := testkit.Receive(t, d, wait)
		bodies = append(bodies, string(m.Body))
		off, _ := m.Headers["x-stream-offset"].(int64)
		offsets = append(offsets, off)
		_ = m.Ack(false)
	}
	return bodies, offsets
}

func TestStreamReplaysFromEveryKindOfOffset(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	declareStream(t, ch, "events", nil)
	publishConfirmed(t, ch, "", "events", 0, 100, nil)

	bodies, offsets := readStream(t, consumeStream(t, c, "events", amqp.Table{"x-stream-offset": "first"}), 100)
	for i := range bodies {
		if bodies[i] != fmt.Sprint(i) || offsets[i] != int64(i) {
			t.Fatalf("first: position %d holds %s at offset %d", i, bodies[i], offsets[i])
		}
	}
	if b, _ := readStream(t, consumeStream(t, c, "events", amqp.Table{"x-stream-offset": int64(90)}), 10); b[0] != "90" {
		t.Fatalf("offset 90 starts at %s", b[0])
	}
	if b, _ := readStream(t, consumeStream(t, c, "events", amqp.Table{"x-stream-offset": "last"}), 1); b[0] != "99" {
		t.Fatalf("last starts at %s", b[0])
	}
	// AMQP timestamps have whole seconds: start the new batch in a fresh
	// second and ask for it.
	mid := time.Now().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(mid) + 20*time.Millisecond)
	next := consumeStream(t, c, "events", amqp.Table{"x-stream-offset": "next"})
	byTime := consumeStream(t, c, "events", amqp.Table{"x-stream-offset": mid})
	_, ch2 := s.Channel(t)
	publishConfirmed(t, ch2, "", "events", 100, 5, nil)
	if b, _ := readStream(t, next, 5); b[0] != "100" {
		t.Fatalf("next starts at %s", b[0])
	}
	if b, _ := readStream(t, byTime, 5); b[0] != "100" {
		t.Fatalf("a timestamp after message 99 starts at %s", b[0])
	}
	// Acks advance credit, not deletion: everything is still there.
	if n := queueLen(t, ch2, "events"); n != 105 {
		t.Fatalf("stream holds %d messages, want 105", n)
	}
}

func TestStreamRulesAsRabbitMQ(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	_, err := ch.QueueDeclare("flimsy", false, false, false, false, amqp.Table{"x-queue-type": "stream"})
	expectCode(t, err, amqp.PreconditionFailed)
	ch, _ = c.Channel()
	declareStream(t, ch, "log", nil)
	_, err = ch.Consume("log", "", true, false, false, false, nil)
	expectCode(t, err, amqp.PreconditionFailed) // autoack
	ch, _ = c.Channel()
	_, err = ch.Consume("log", "", false, false, false, false, nil)
	expectCode(t, err, amqp.PreconditionFailed) // no prefetch
	ch, _ = c.Channel()
	_, _, err = ch.Get("log", false)
	expectCode(t, err, amqp.PreconditionFailed)
}

func TestStreamFilteringAndExchangeBinding(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	declareStream(t, ch, "orders", nil)
	if err := ch.QueueBind("orders", "order.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	regions := []string{"eu", "us", "", "eu"}
	publishConfirmed(t, ch, "amq.topic", "order.created", 0, 40, func(i int) amqp.Table {
		if r := regions[i%4]; r != "" {
			return amqp.Table{"x-stream-filter-value": r}
		}
		return nil
	})
	eu, _ := readStream(t, consumeStream(t, c, "orders", amqp.Table{"x-stream-offset": "first", "x-stream-filter": "eu"}), 20)
	for _, b := range eu {
		var i int
		fmt.Sscan(b, &i)
		if regions[i%4] != "eu" {
			t.Fatalf("filter eu delivered message %d (%q)", i, regions[i%4])
		}
	}
	d := consumeStream(t, c, "orders", amqp.Table{"x-stream-offset": "first", "x-stream-filter": []any{"us"}, "x-stream-match-unfiltered": true})
	got, _ := readStream(t, d, 20)
	testkit.NoDelivery(t, d, 200*time.Millisecond)
	if got[0] != "1" || got[1] != "2" {
		t.Fatalf("us + unfiltered got %v", got[:2])
	}
}

func TestStreamRetentionDropsOldSegmentsUnderASlowReader(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	declareStream(t, ch, "metrics", amqp.Table{"x-max-length": int32(200), "x-stream-max-segment-size-bytes": int32(4096)})
	_, first0 := s.Channel(t) // a channel per publishConfirmed: each adds a confirm listener
	publishConfirmed(t, first0, "", "metrics", 0, 1, nil)
	slow := consumeStream(t, c, "metrics", amqp.Table{"x-stream-offset": "first"})
	first := testkit.Receive(t, slow, wait) // the reader takes one and stalls
	publishConfirmed(t, ch, "", "metrics", 1, 2000, nil)
	time.Sleep(1100 * time.Millisecond) // retention runs at most once a second
	publishConfirmed(t, ch, "", "metrics", 2001, 10, nil)
	testkit.Eventually(t, wait, "old segments dropped", func() bool {
		n := queueLen(t, ch, "metrics")
		return n < 1000 && n >= 200
	})
	_ = first.Ack(false)
	// The slow reader gets what it already had in flight, then resumes past
	// the dropped segments: offsets keep increasing, with a gap, to the end.
	last, got := int64(0), 1
	for last < 2010 {
		m := testkit.Receive(t, slow, wait)
		off, _ := m.Headers["x-stream-offset"].(int64)
		if off <= last {
			t.Fatalf("offset %d after %d", off, last)
		}
		last = off
		got++
		_ = m.Ack(false)
	}
	if got > 1000 {
		t.Fatalf("the slow reader got %d of 2011 messages: retention dropped nothing under it", got)
	}
}

func TestStreamNamedConsumerResumesAfterRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	declareStream(t, ch, "ledger", nil)
	publishConfirmed(t, ch, "", "ledger", 0, 100, nil)
	d := consumeStream(t, c, "ledger", amqp.Table{"x-stream-offset": "first", "x-stream-consumer-name": "billing"})
	readStream(t, d, 50) // acked 0..49
	time.Sleep(100 * time.Millisecond)

	s = s.Restart(t)
	c, ch = s.Channel(t)
	if n := queueLen(t, ch, "ledger"); n != 100 {
		t.Fatalf("%d messages after restart", n)
	}
	b, offs := readStream(t, consumeStream(t, c, "ledger", amqp.Table{"x-stream-consumer-name": "billing"}), 50)
	if b[0] != "50" || offs[49] != 99 {
		t.Fatalf("billing resumed at %s (offset %d)", b[0], offs[0])
	}
}

func TestStreamOneMillionReadFromFirstWhileAppending(t *testing.T) {
	if testing.Short() {
		t.Skip("1M messages")
	}
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	declareStream(t, ch, "firehose", nil)
	const n = 1_000_000
	half := n / 2
	publishConfirmed(t, ch, "", "firehose", 0, 1000, nil)
	rch, _ := c.Channel()
	_ = rch.Qos(2000, 0, false)
	d, err := rch.Consume("firehose", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, pch := s.Channel(t)
		body := make([]byte, 16)
		for i := 1000; i < n; i++ {
			if err := pch.Publish("", "firehose", false, false, amqp.Publishing{Body: body}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < n; i++ {
		select {
		case m := <-d:
			if off, _ := m.Headers["x-stream-offset"].(int64); off != int64(i) {
				t.Fatalf("delivery %d has offset %d", i, off)
			}
			if i%100 == 99 {
				_ = m.Ack(true)
			}
			if i == half {
				t.Logf("half way: %d read while appending", half)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("stalled after %d of %d", i, n)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStreamRetentionByAgeAndBytes(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	declareStream(t, ch, "by-bytes", amqp.Table{"x-max-length-bytes": int32(20000), "x-stream-max-segment-size-bytes": int32(2048)})
	declareStream(t, ch, "by-age", amqp.Table{"x-max-age": "1s", "x-stream-max-segment-size-bytes": int32(2048)})
	_, ch2 := s.Channel(t)
	publishConfirmed(t, ch, "", "by-bytes", 0, 2000, nil)
	publishConfirmed(t, ch2, "", "by-age", 0, 500, nil)
	time.Sleep(1500 * time.Millisecond)
	_, ch3 := s.Channel(t)
	_, ch4 := s.Channel(t)
	publishConfirmed(t, ch3, "", "by-bytes", 2000, 10, nil) // a commit after the pause runs retention
	publishConfirmed(t, ch4, "", "by-age", 500, 10, nil)
	_, q := s.Channel(t)
	testkit.Eventually(t, wait, "size retention", func() bool { n := queueLen(t, q, "by-bytes"); return n < 2010 && n > 0 })
	testkit.Eventually(t, wait, "age retention", func() bool { return queueLen(t, q, "by-age") < 100 })
}
