package broker_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// The core tests (core_*_test.go) drive the broker through its exported API
// only, as a protocol adapter does, so they hold whatever the queue
// internals become. They need no AMQP adapter and, with memstore, no disk.

// taker is a Consumer with a prefetch: it takes up to limit unacked
// deliveries (limit < 0: no limit) and records them.
type taker struct {
	mu        sync.Mutex
	limit     int
	noAck     bool
	got       []broker.Delivery
	held      int // taken and not yet settled by the test
	cancelled chan struct{}
}

func newTaker(limit int) *taker { return &taker{limit: limit, cancelled: make(chan struct{})} }

func (c *taker) TryDeliver(d broker.Delivery) broker.Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.limit >= 0 && c.held >= c.limit {
		return broker.Refuse
	}
	c.got = append(c.got, d)
	if !c.noAck {
		c.held++
	}
	return broker.Take
}

func (c *taker) Cancelled(*broker.Queue) { close(c.cancelled) }

// settle records that the test acked or requeued n deliveries, and lets the
// queue offer more: what an AMQP channel does after basic.ack.
func (c *taker) settle(n int) {
	c.mu.Lock()
	c.held -= n
	c.mu.Unlock()
}

func (c *taker) deliveries() []broker.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]broker.Delivery(nil), c.got...)
}

func (c *taker) bodies() []string {
	var out []string
	for _, d := range c.deliveries() {
		out = append(out, string(d.Msg.Body))
	}
	return out
}

// waitFor polls cond every millisecond for at most timeout: for effects of
// the broker's own timers (TTL, x-expires), which have no injected clock.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func declare(t *testing.T, v *broker.VHost, cfg broker.QueueConfig) *broker.Queue {
	t.Helper()
	q, err := v.DeclareQueue(cfg, false, 1)
	if err != nil {
		t.Fatalf("declare %s: %v", cfg.Name, err)
	}
	return q
}

// send publishes body with routing key key to exchange x.
func send(t *testing.T, v *broker.VHost, x, key, body string, props message.Properties) broker.PublishResult {
	t.Helper()
	return sendMsg(t, v, &message.Message{Exchange: x, RoutingKey: key, Body: []byte(body), Props: props})
}

func sendMsg(t *testing.T, v *broker.VHost, m *message.Message) broker.PublishResult {
	t.Helper()
	var s broker.RouteScratch
	res, err := v.Publish(&s, m, nil, 0)
	if err != nil {
		t.Fatalf("publish %q: %v", m.Body, err)
	}
	return res
}

// drain gets every ready message with no-ack and returns the bodies.
func drain(q *broker.Queue) []string {
	var out []string
	for range 10_000 {
		d, ok := q.Get(true)
		if !ok {
			break
		}
		out = append(out, string(d.Msg.Body))
	}
	return out
}

func counts(q *broker.Queue) [3]int {
	r, u, c := q.Counts()
	return [3]int{r, u, c}
}
