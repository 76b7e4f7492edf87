package main

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
)

// Retained messages are the store's records: every set, replacement and
// clear a PUBACK answered survives a kill -9 right after the last PUBACK.
func TestRetainedMessagesSurviveKill9AfterTheLastPuback(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	addr := s.mqttAddr(t)
	pub := mqttClient(t, addr, "publisher", true, nil)
	want := map[string]string{}
	const topics = 20
	for i := range 200 {
		topic := fmt.Sprintf("state/%d", i%topics)
		payload := fmt.Sprint("v", i)
		if i%7 == 0 {
			payload = "" // a clear
		}
		if tok := pub.Publish(topic, 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
		if payload == "" {
			delete(want, topic)
		} else {
			want[topic] = payload
		}
	}
	kill9(t, s)

	s = startBinaryOn(t, dir)
	addr = s.mqttAddr(t)
	got := make(chan paho.Message, 100)
	sub := mqttClient(t, addr, "viewer", true, nil)
	defer sub.Disconnect(50)
	if tok := sub.Subscribe("state/#", 1, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// A marker published after the SUBACK comes after every retained
	// message the subscription announced.
	marker := mqttClient(t, addr, "marker", true, nil)
	defer marker.Disconnect(50)
	if tok := marker.Publish("state/marker", 1, false, "end"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	have := map[string]string{}
	for {
		select {
		case m := <-got:
			if m.Topic() == "state/marker" {
				if fmt.Sprint(have) != fmt.Sprint(want) {
					t.Fatalf("retained after kill -9:\n got %v\nwant %v", have, want)
				}
				return
			}
			if !m.Retained() {
				t.Fatalf("%s delivered without the retain flag", m.Topic())
			}
			have[m.Topic()] = string(m.Payload())
		case <-time.After(10 * time.Second):
			t.Fatalf("no marker; retained so far %v", have)
		}
	}
}

// Persistent messages waiting in a durable delayed-message exchange survive
// kill -9 right after their confirms: one whose delay passed while the node
// was down is routed at start-up, one still waiting keeps its original due
// time. A transient one is kept in memory only. Once routed, a message's
// record is gone: a clean restart routes nothing again.
func TestDelayedPersistentMessagesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	if err := ch.ExchangeDeclare("later", "x-delayed-message", true, false, false, false, amqp.Table{"x-delayed-type": "direct"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("due", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("due", "k", "later", false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 10))
	const long = 4 * time.Second
	published := time.Now()
	for _, p := range []struct {
		body  string
		delay time.Duration
		mode  uint8
	}{
		{"short", 100 * time.Millisecond, amqp.Persistent},
		{"long", long, amqp.Persistent},
		{"transient", 100 * time.Millisecond, amqp.Transient},
	} {
		err := ch.Publish("later", "k", false, false, amqp.Publishing{DeliveryMode: p.mode, Body: []byte(p.body),
			Headers: amqp.Table{"x-delay": int32(p.delay / time.Millisecond)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case cf := <-confirms:
			if !cf.Ack {
				t.Fatalf("nack %d", cf.DeliveryTag)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no confirm")
		}
	}
	kill9(t, s)
	_ = c.Close()

	s = startBinaryOn(t, dir)
	c, ch = dialChannel(t, s.url())
	d, err := ch.Consume("due", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	receive := func(want string) time.Time {
		t.Helper()
		select {
		case m := <-d:
			if string(m.Body) != want {
				t.Fatalf("got %q, want %q", m.Body, want)
			}
			return time.Now()
		case <-time.After(long + 10*time.Second):
			t.Fatalf("%q never arrived after kill -9", want)
		}
		return time.Time{}
	}
	receive("short") // due while the node was down: routed at start-up
	if at := receive("long"); at.Sub(published) < long {
		t.Fatalf("the long-delayed message arrived %v after its publish, before its %v delay", at.Sub(published), long)
	}
	_ = c.Close()

	// A clean stop and start: nothing is routed again. A marker with a
	// tiny delay, published after the start, arrives after anything the
	// start-up routed.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("tern did not stop")
	}
	s = startBinaryOn(t, dir)
	c, ch = dialChannel(t, s.url())
	defer c.Close()
	if err := ch.Publish("later", "k", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("marker"),
		Headers: amqp.Table{"x-delay": int32(1)}}); err != nil {
		t.Fatal(err)
	}
	d, err = ch.Consume("due", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-d:
		if string(m.Body) != "marker" {
			t.Fatalf("%q routed again after a restart; the transient one must be gone too", m.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no marker")
	}
}
