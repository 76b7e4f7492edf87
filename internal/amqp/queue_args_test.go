package amqp_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

func TestMessageTTLExpiresAndDeadLetters(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	dlq := declare(t, ch, nil)
	q := declare(t, ch, amqp.Table{"x-message-ttl": int32(100), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
	publish(t, ch, "", q, body("short-lived"))
	// Nobody consumes q: the message expires on its own and moves.
	testkit.Eventually(t, wait, "expiry", func() bool { return queueLen(t, ch, dlq) == 1 })
	if queueLen(t, ch, q) != 0 {
		t.Fatal("expired message still in queue")
	}
	m, _, _ := ch.Get(dlq, true)
	deaths, _ := m.Headers["x-death"].([]any)
	if len(deaths) != 1 {
		t.Fatalf("x-death %v", m.Headers)
	}
	death := deaths[0].(amqp.Table)
	if death["reason"] != "expired" || death["queue"] != q || death["count"] != int64(1) || death["exchange"] != "" {
		t.Fatalf("x-death entry %v", death)
	}
	if keys, _ := death["routing-keys"].([]any); len(keys) != 1 || keys[0] != q {
		t.Fatalf("routing-keys %v", death["routing-keys"])
	}
	if m.Headers["x-first-death-reason"] != "expired" || m.Headers["x-first-death-queue"] != q {
		t.Fatalf("x-first-death headers %v", m.Headers)
	}
	if m.RoutingKey != dlq {
		t.Fatalf("dead-letter routing key %q", m.RoutingKey)
	}
}

func TestPerMessageExpiration(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, amqp.Publishing{Expiration: "50", Body: []byte("gone")})
	publish(t, ch, "", q, amqp.Publishing{Expiration: "60000", Body: []byte("kept")})
	time.Sleep(150 * time.Millisecond)
	if got := getBody(t, ch, q); got != "kept" {
		t.Fatalf("got %q", got)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, ch, "", q, amqp.Publishing{Expiration: "soon", Body: []byte("x")})
	select {
	case err := <-closed:
		expectCode(t, err, amqp.PreconditionFailed)
	case <-time.After(wait):
		t.Fatal("invalid expiration accepted")
	}
}

func TestQueueExpiresWhenUnused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("idle", false, false, false, false, amqp.Table{"x-expires": int32(150)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, wait, "queue expiry", func() bool {
		_, err := ch.QueueDeclarePassive("idle", false, false, false, false, nil)
		if err != nil {
			ch, _ = c.Channel()
		}
		return amqpCode(err) == amqp.NotFound
	})
}

func TestMaxLengthDropsHead(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	dlq := declare(t, ch, nil)
	q := declare(t, ch, amqp.Table{"x-max-length": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
	for i := 1; i <= 4; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	testkit.Eventually(t, wait, "drops", func() bool { return queueLen(t, ch, dlq) == 2 })
	if got := []string{getBody(t, ch, q), getBody(t, ch, q)}; !slices.Equal(got, []string{"3", "4"}) {
		t.Fatalf("kept %v, want the newest two", got)
	}
	m, _, _ := ch.Get(dlq, true)
	if string(m.Body) != "1" || m.Headers["x-first-death-reason"] != "maxlen" {
		t.Fatalf("dropped head %q headers %v", m.Body, m.Headers)
	}
}

func TestMaxLengthBytes(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, amqp.Table{"x-max-length-bytes": int32(10)})
	publish(t, ch, "", q, body("12345"))
	publish(t, ch, "", q, body("67890"))
	publish(t, ch, "", q, body("abcde"))
	testkit.Eventually(t, wait, "limit", func() bool { return queueLen(t, ch, q) == 2 })
	if got := getBody(t, ch, q); got != "67890" {
		t.Fatalf("head %q after byte-limit drop", got)
	}
}

func TestOverflowRejectPublishNacks(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2))
	publish(t, ch, "", q, body("fits"))
	publish(t, ch, "", q, body("overflows"))
	first, second := <-confirms, <-confirms
	if !first.Ack || second.Ack {
		t.Fatalf("confirms %+v %+v: want ack then nack", first, second)
	}
	if queueLen(t, ch, q) != 1 || getBody(t, ch, q) != "fits" {
		t.Fatal("queue content")
	}
}

func TestOverflowRejectPublishDLX(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	dlq := declare(t, ch, nil)
	q := declare(t, ch, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
	publish(t, ch, "", q, body("fits"))
	publish(t, ch, "", q, body("rejected"))
	testkit.Eventually(t, wait, "dead-lettered", func() bool { return queueLen(t, ch, dlq) == 1 })
	if getBody(t, ch, dlq) != "rejected" || getBody(t, ch, q) != "fits" {
		t.Fatal("wrong messages")
	}
}

func TestDeadLetterOnRejectCountsDeaths(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	// work dead-letters rejections to dlx → retry, whose TTL sends them back
	// to done; x-death records both hops, newest first.
	if err := ch.ExchangeDeclare("dlx", "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	done := declare(t, ch, nil)
	retry := declare(t, ch, amqp.Table{"x-message-ttl": int32(10), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": done})
	_ = ch.QueueBind(retry, "", "dlx", false, nil)
	work := declare(t, ch, amqp.Table{"x-dead-letter-exchange": "dlx"})
	publish(t, ch, "", work, amqp.Publishing{Body: []byte("job"), Headers: amqp.Table{"attempt": int32(1)}})
	m := testkit.Receive(t, consume(t, ch, work, false), wait)
	_ = m.Reject(false)
	testkit.Eventually(t, wait, "round trip", func() bool { return queueLen(t, ch, done) == 1 })
	got, _, _ := ch.Get(done, true)
	deaths := got.Headers["x-death"].([]any)
	if len(deaths) != 2 {
		t.Fatalf("x-death %v", deaths)
	}
	latest, first := deaths[0].(amqp.Table), deaths[1].(amqp.Table)
	if latest["reason"] != "expired" || latest["queue"] != retry || first["reason"] != "rejected" || first["queue"] != work {
		t.Fatalf("x-death order %v", deaths)
	}
	if first["exchange"] != "" || got.Headers["x-first-death-reason"] != "rejected" || got.Headers["x-last-death-reason"] != "expired" {
		t.Fatalf("headers %v", got.Headers)
	}
	if got.Headers["attempt"] != int32(1) {
		t.Fatal("original headers lost")
	}
}

func TestMaxPriority(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, amqp.Table{"x-max-priority": int32(10)})
	for i, p := range []uint8{1, 5, 0, 9, 5, 200} {
		publish(t, ch, "", q, amqp.Publishing{Priority: p, Body: []byte(fmt.Sprintf("p%d-%d", p, i))})
	}
	testkit.Eventually(t, wait, "queued", func() bool { return queueLen(t, ch, q) == 6 })
	got := bodies(t, consume(t, ch, q, true), 6)
	// Priorities above x-max-priority count as the maximum (RabbitMQ).
	want := []string{"p200-5", "p9-3", "p5-1", "p5-4", "p1-0", "p0-2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestSingleActiveConsumer(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, amqp.Table{"x-single-active-consumer": true})
	_, ch1 := s.Channel(t)
	_, ch2 := s.Channel(t)
	d1 := consume(t, ch1, q, true)
	d2 := consume(t, ch2, q, true)
	for i := 0; i < 4; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	if got := bodies(t, d1, 4); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
		t.Fatal(got)
	}
	testkit.NoDelivery(t, d2, 100*time.Millisecond)
	_ = ch1.Close()
	publish(t, ch, "", q, body("after"))
	if m := testkit.Receive(t, d2, wait); string(m.Body) != "after" {
		t.Fatal("second consumer did not take over")
	}
}

func TestConsumerPriorities(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	_, low := s.Channel(t)
	_, high := s.Channel(t)
	_ = high.Qos(2, 0, false)
	dl, err := low.Consume(q, "", false, false, false, false, amqp.Table{"x-priority": int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	dh, err := high.Consume(q, "", false, false, false, false, amqp.Table{"x-priority": int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		publish(t, ch, "", q, body(fmt.Sprint(i)))
	}
	// The high-priority consumer takes what its prefetch allows, the rest
	// overflows to the low-priority one.
	if got := bodies(t, dh, 2); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatal(got)
	}
	if got := len(drain(dl, 200*time.Millisecond)); got != 3 {
		t.Fatalf("low-priority consumer got %d", got)
	}
}

func TestInvalidQueueArgumentsRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c := s.Dial(t)
	for _, args := range []amqp.Table{
		{"x-message-ttl": int32(-1)},
		{"x-message-ttl": "soon"},
		{"x-expires": int32(0)},
		{"x-overflow": "explode"},
		{"x-max-priority": int32(1000)},
		{"x-dead-letter-routing-key": "k"},
	} {
		ch, _ := c.Channel()
		_, err := ch.QueueDeclare("", false, true, true, false, args)
		if amqpCode(err) != amqp.PreconditionFailed {
			t.Errorf("args %v: got %v, want 406", args, err)
		}
	}
}
