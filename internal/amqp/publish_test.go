package amqp_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

func TestPublisherConfirmsWithMultipleAcks(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1000))
	const n = 1000
	for i := 0; i < n; i++ {
		publish(t, ch, "", q, body("m"))
	}
	for i := 1; i <= n; i++ {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != uint64(i) {
				t.Fatalf("confirm %d: %+v", i, c)
			}
		case <-time.After(wait):
			t.Fatalf("confirm %d missing", i)
		}
	}
	if st := s.AMQPStats(); st.Confirmed >= n {
		t.Errorf("%d basic.ack frames for %d publishes: confirms are not batched with multiple", st.Confirmed, n)
	}
}

func TestTransactionsCommitAndRollback(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, body("rolled back"))
	if err := ch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, body("committed"))
	if queueLen(t, ch, q) != 0 {
		t.Fatal("uncommitted publish visible")
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if queueLen(t, ch, q) != 1 || getBody(t, ch, q) != "committed" {
		t.Fatal("commit")
	}
	// Acks inside a transaction wait for commit too.
	publish(t, ch, "", q, body("to ack"))
	_ = ch.TxCommit()
	m, ok, err := ch.Get(q, false)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	_ = m.Ack(false)
	_ = ch.TxRollback()
	//lint:ignore SA1019 basic.recover is part of the protocol under test
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	if queueLen(t, ch, q) != 1 {
		t.Fatal("rolled-back ack took effect")
	}
	expectCode(t, ch.Confirm(false), amqp.PreconditionFailed)
}

func TestDirectReplyTo(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	// Server side: an RPC worker.
	_, srvCh := s.Channel(t)
	rpcQ, err := srvCh.QueueDeclare("rpc_queue", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	reqs := consume(t, srvCh, rpcQ.Name, false)
	go func() {
		for r := range reqs {
			_ = srvCh.Publish("", r.ReplyTo, false, false, amqp.Publishing{CorrelationId: r.CorrelationId, Body: append([]byte("re: "), r.Body...)})
			_ = r.Ack(false)
		}
	}()
	// Client side: no reply queue declared.
	_, cli := s.Channel(t)
	replies, err := cli.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		publish(t, cli, "", "rpc_queue", amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", CorrelationId: fmt.Sprint(i), Body: []byte("ping")})
		r := testkit.Receive(t, replies, wait)
		if string(r.Body) != "re: ping" || r.CorrelationId != fmt.Sprint(i) {
			t.Fatalf("reply %q corr %q", r.Body, r.CorrelationId)
		}
	}
	// A channel without a reply consumer cannot ask for replies.
	_, other := s.Channel(t)
	closed := other.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, other, "", "rpc_queue", amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("x")})
	select {
	case err := <-closed:
		expectCode(t, err, amqp.PreconditionFailed)
	case <-time.After(wait):
		t.Fatal("publish with reply-to and no reply consumer accepted")
	}
	_, other = s.Channel(t)
	_, err = other.Consume("amq.rabbitmq.reply-to", "", false, false, false, false, nil)
	expectCode(t, err, amqp.PreconditionFailed)
}

func TestConnectionBlockedOnMemoryAlarm(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MemoryHighWatermark = 64 << 10 })
	c, ch := s.Channel(t)
	blocked := c.NotifyBlocked(make(chan amqp.Blocking, 4))
	q := declare(t, ch, nil)
	payload := bytes.Repeat([]byte("x"), 16<<10)
	for i := 0; i < 5; i++ { // 80 KiB queued: above the 64 KiB watermark
		publish(t, ch, "", q, amqp.Publishing{Body: payload})
	}
	select {
	case b := <-blocked:
		if !b.Active || b.Reason != "low on memory" {
			t.Fatalf("%+v", b)
		}
	case <-time.After(wait):
		t.Fatal("no connection.blocked")
	}
	// Publishes now wait in the socket; consumers on another connection
	// still drain the queue, which clears the alarm.
	publish(t, ch, "", q, amqp.Publishing{Body: payload})
	_, drainCh := s.Channel(t)
	d := consume(t, drainCh, q, true)
	for i := 0; i < 6; i++ {
		testkit.Receive(t, d, wait)
	}
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("%+v", b)
		}
	case <-time.After(wait):
		t.Fatal("no connection.unblocked")
	}
}

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.AMQP.MaxMessageSize = 1024 })
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, ch, "", q, amqp.Publishing{Body: make([]byte, 2048)})
	select {
	case err := <-closed:
		expectCode(t, err, amqp.PreconditionFailed)
	case <-time.After(wait):
		t.Fatal("oversized message accepted")
	}
}

func TestUserIDMustMatchLogin(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, amqp.Publishing{UserId: "guest", Body: []byte("ok")})
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, ch, "", q, amqp.Publishing{UserId: "admin", Body: []byte("spoof")})
	select {
	case err := <-closed:
		expectCode(t, err, amqp.PreconditionFailed)
	case <-time.After(wait):
		t.Fatal("spoofed user_id accepted")
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	ts := time.Unix(1700000000, 0)
	sent := amqp.Publishing{
		ContentType: "application/json", ContentEncoding: "gzip", DeliveryMode: 2, Priority: 3,
		CorrelationId: "c1", ReplyTo: "r", Expiration: "60000", MessageId: "m1", Timestamp: ts,
		Type: "t", UserId: "guest", AppId: "a",
		Headers: amqp.Table{"s": "str", "i": int32(-7), "l": int64(1 << 40), "b": true, "f": 1.5, "arr": []any{"x", int32(1)}, "nested": amqp.Table{"k": "v"}, "bytes": []byte{1, 2}},
		Body:    []byte(`{"a":1}`),
	}
	publish(t, ch, "", q, sent)
	m := testkit.Receive(t, consume(t, ch, q, true), wait)
	if m.ContentType != sent.ContentType || m.ContentEncoding != sent.ContentEncoding || m.DeliveryMode != 2 || m.Priority != 3 ||
		m.CorrelationId != "c1" || m.ReplyTo != "r" || m.Expiration != "60000" || m.MessageId != "m1" || !m.Timestamp.Equal(ts) ||
		m.Type != "t" || m.UserId != "guest" || m.AppId != "a" || string(m.Body) != `{"a":1}` {
		t.Fatalf("properties changed: %+v", m)
	}
	for k, v := range sent.Headers {
		if fmt.Sprint(m.Headers[k]) != fmt.Sprint(v) {
			t.Errorf("header %s: %v (%T) became %v (%T)", k, v, v, m.Headers[k], m.Headers[k])
		}
	}
}

func TestImmediateIsNotImplemented540(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	_ = ch.Publish("", "q", false, true, body("x"))
	select {
	case err := <-closed:
		expectCode(t, err, amqp.NotImplemented)
	case <-time.After(wait):
		t.Fatal("immediate accepted")
	}
}

func TestManyChannelsAndConsumersOnOneConnection(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c := s.Dial(t)
	pub, _ := c.Channel()
	var ds []<-chan amqp.Delivery
	for i := 0; i < 20; i++ {
		ch, err := c.Channel()
		if err != nil {
			t.Fatal(err)
		}
		q := declare(t, ch, nil)
		_ = ch.QueueBind(q, "", "amq.fanout", false, nil)
		ds = append(ds, consume(t, ch, q, true))
	}
	for i := 0; i < 50; i++ {
		publish(t, pub, "amq.fanout", "", body(fmt.Sprint(i)))
	}
	want := make([]string, 50)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	for _, d := range ds {
		if got := bodies(t, d, 50); !slices.Equal(got, want) {
			t.Fatal("fan-out lost or reordered messages")
		}
	}
}
