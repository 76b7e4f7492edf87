package amqp_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// amqp091-go (like pika and the Java client) keeps RabbitMQ's meaning:
// global=false limits each consumer.
func TestQosGlobalFalseLimitsEachConsumerForAmqp091(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q1, q2 := declare(t, ch, nil), declare(t, ch, nil)
	for range 5 {
		publish(t, ch, "", q1, body("a"))
		publish(t, ch, "", q2, body("b"))
	}
	if err := ch.Qos(2, 0, false); err != nil {
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
		t.Fatalf("%d unacked over two consumers with per-consumer prefetch 2, want 4", n)
	}
}

// A client that says it is py-amqp (kombu, Celery) means the
// specification's basic.qos: global=false limits the channel.
func TestQosGlobalFalseLimitsTheChannelForPyAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q1, q2 := declare(t, ch, nil), declare(t, ch, nil)
	for range 5 {
		publish(t, ch, "", q1, body("a"))
		publish(t, ch, "", q2, body("b"))
	}
	r := s.DialRaw(t)
	r.Write(amqp091.ProtocolHeader[:])
	r.Expect()
	r.Send(0, &amqp091.ConnectionStartOk{
		ClientProperties: amqp091.Table{"product": "py-amqp", "product_version": "5.1.1"},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	tune := r.Expect().(*amqp091.ConnectionTune)
	r.Send(0, &amqp091.ConnectionTuneOk{ChannelMax: tune.ChannelMax, FrameMax: tune.FrameMax})
	r.Send(0, &amqp091.ConnectionOpen{VirtualHost: "/"})
	r.Expect()
	r.Send(1, &amqp091.ChannelOpen{})
	r.Expect()
	r.Send(1, &amqp091.BasicQos{PrefetchCount: 2})
	if _, ok := r.Expect().(*amqp091.BasicQosOk); !ok {
		t.Fatal("no qos-ok")
	}
	r.Send(1, &amqp091.BasicConsume{Queue: q1})
	r.Send(1, &amqp091.BasicConsume{Queue: q2})
	// Count deliveries until the wire is quiet.
	delivered, consumeOks := 0, 0
	for {
		_ = r.NC.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		f, err := r.FR.ReadFrame()
		if err != nil {
			break
		}
		if f.Type != amqp091.FrameMethod {
			continue
		}
		switch cls, mth := amqp091.MethodIDs(f.Payload); {
		case cls == amqp091.ClassBasic && mth == 60:
			delivered++
		case cls == amqp091.ClassBasic && mth == 21:
			consumeOks++
		}
	}
	if consumeOks != 2 || delivered != 2 {
		t.Fatalf("%d consume-oks, %d deliveries on a py-amqp channel with prefetch 2, want 2 and 2", consumeOks, delivered)
	}
}
