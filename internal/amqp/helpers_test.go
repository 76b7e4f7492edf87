package amqp_test

import (
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/testkit"
)

const wait = 3 * time.Second

// amqpCode returns the reply code of an *amqp.Error, or 0.
func amqpCode(err error) int {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

func expectCode(t *testing.T, err error, code int) *amqp.Error {
	t.Helper()
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want AMQP error %d, got %v", code, err)
	}
	if ae.Code != code {
		t.Fatalf("want code %d, got %d (%s)", code, ae.Code, ae.Reason)
	}
	return ae
}

// declare makes a server-named test queue.
func declare(t *testing.T, ch *amqp.Channel, args amqp.Table) string {
	t.Helper()
	q, err := ch.QueueDeclare("", false, false, false, false, args)
	if err != nil {
		t.Fatal(err)
	}
	return q.Name
}

func publish(t *testing.T, ch *amqp.Channel, exchange, key string, p amqp.Publishing) {
	t.Helper()
	if err := ch.Publish(exchange, key, false, false, p); err != nil {
		t.Fatal(err)
	}
}

func consume(t *testing.T, ch *amqp.Channel, queue string, autoAck bool) <-chan amqp.Delivery {
	t.Helper()
	d, err := ch.Consume(queue, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func body(s string) amqp.Publishing { return amqp.Publishing{Body: []byte(s)} }

// bodies receives n deliveries (autoack) and returns their bodies.
func bodies(t *testing.T, d <-chan amqp.Delivery, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, string(testkit.Receive(t, d, wait).Body))
	}
	return out
}

// getBody fetches one message with basic.get, failing when the queue is empty.
func getBody(t *testing.T, ch *amqp.Channel, q string) string {
	t.Helper()
	m, ok, err := ch.Get(q, true)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("queue %s is empty", q)
	}
	return string(m.Body)
}

// drain receives until nothing arrives for quiet and returns the deliveries.
func drain(d <-chan amqp.Delivery, quiet time.Duration) []amqp.Delivery {
	var out []amqp.Delivery
	for {
		select {
		case m := <-d:
			out = append(out, m)
		case <-time.After(quiet):
			return out
		}
	}
}

func queueLen(t *testing.T, ch *amqp.Channel, q string) int {
	t.Helper()
	st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.Messages
}

// startFake starts a server whose time is a fake clock the test advances.
// It starts at the real time, so checks not (yet) on the injected clock see
// ordinary publish times.
func startFake(t *testing.T, opts ...testkit.Option) (*testkit.Server, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	return testkit.Start(t, append([]testkit.Option{testkit.WithClock(clk)}, opts...)...), clk
}
