package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// recorder is a Consumer that takes up to limit messages.
type recorder struct {
	mu       sync.Mutex
	limit    int
	got      []Delivery
	canceled bool
}

func (r *recorder) TryDeliver(d Delivery) Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.limit >= 0 && len(r.got) >= r.limit {
		return Refuse
	}
	r.got = append(r.got, d)
	return Take
}

func (r *recorder) Cancelled(*Queue) {
	r.mu.Lock()
	r.canceled = true
	r.mu.Unlock()
}

func (r *recorder) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, d := range r.got {
		out = append(out, string(d.Msg.Body))
	}
	return out
}

func newTestQueue(t *testing.T, args map[string]any) (*Broker, *VHost, *Queue) {
	t.Helper()
	b := New(Config{})
	v := b.VHost("/")
	q, err := v.DeclareQueue(QueueConfig{Name: "q", Args: args}, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b, v, q
}

func pub(t *testing.T, v *VHost, key, body string) PublishResult {
	t.Helper()
	var s RouteScratch
	res, err := v.Publish(&s, &message.Message{Exchange: "", RoutingKey: key, Body: []byte(body)}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestQueueRequeueRestoresOriginalOrderBehindNothing(t *testing.T) {
	t.Parallel()
	_, v, q := newTestQueue(t, nil)
	for _, s := range []string{"a", "b", "c", "d"} {
		pub(t, v, "q", s)
	}
	c := &recorder{limit: 3}
	if err := q.Consume(c, ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	got := c.got
	q.Cancel(c)
	// Requeue b then a separately: they still go back ahead of d, in order.
	q.Requeue([]Delivery{got[1]})
	q.Requeue([]Delivery{got[0], got[2]})
	var order []string
	for {
		d, ok := q.Get(true)
		if !ok {
			break
		}
		order = append(order, string(d.Msg.Body))
		if d.Redelivered != (string(d.Msg.Body) != "d") {
			t.Errorf("%s redelivered=%v", d.Msg.Body, d.Redelivered)
		}
	}
	if want := "a b c d"; joined(order) != want {
		t.Fatalf("order %v, want %s", order, want)
	}
}

func joined(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestQueueDispatchWaitsForCredit(t *testing.T) {
	t.Parallel()
	_, v, q := newTestQueue(t, nil)
	c := &recorder{limit: 1}
	_ = q.Consume(c, ConsumeOptions{})
	pub(t, v, "q", "1")
	pub(t, v, "q", "2")
	if ready, unacked, _ := q.Counts(); ready != 1 || unacked != 1 {
		t.Fatalf("ready %d unacked %d", ready, unacked)
	}
	c.mu.Lock()
	c.limit = 2
	c.mu.Unlock()
	q.Ack(c.got[0])
	if got := c.bodies(); joined(got) != "1 2" {
		t.Fatalf("after ack: %v", got)
	}
}

func TestQueueBytesAccountingReturnsToZero(t *testing.T) {
	t.Parallel()
	b, v, q := newTestQueue(t, map[string]any{"x-max-length": int32(3)})
	for i := 0; i < 10; i++ {
		pub(t, v, "q", "0123456789")
	}
	c := &recorder{limit: -1}
	_ = q.Consume(c, ConsumeOptions{})
	q.Ack(c.got...)
	pub(t, v, "q", "x")
	pub(t, v, "q", "y")
	_, _ = v.DeleteQueue("q", false, false, 0)
	// The consumer still holds x and y: one is acked, one requeued into the
	// deleted queue; either way their bytes are released.
	n := len(c.got)
	q.Ack(c.got[n-2])
	q.Requeue([]Delivery{c.got[n-1]})
	if n := b.queuedBytes.Load(); n != 0 {
		t.Fatalf("%d bytes still accounted after everything left", n)
	}
	if !c.canceled {
		t.Fatal("consumer not told of the deletion")
	}
}

func TestMemoryAlarmFollowsQueuedBytes(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := New(Config{MemoryHighWatermark: memCost(10) * 3 / 2, Clock: clock})
	v := b.VHost("/")
	q, _ := v.DeclareQueue(QueueConfig{Name: "q"}, false, 1)
	pub(t, v, "q", "0123456789")
	if b.MemoryAlarm().Active() {
		t.Fatal("alarm below the watermark")
	}
	pub(t, v, "q", "0123456789")
	if !b.MemoryAlarm().Active() {
		t.Fatal("no alarm above the watermark")
	}
	q.Purge()
	clock.Advance(memoryAlarmHold)
	if b.MemoryAlarm().Active() {
		t.Fatal("alarm still on after purge")
	}
}

func TestDeadLetterCycleIsBroken(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	v := b.VHost("/")
	// q expires into itself: RabbitMQ drops such a message instead of
	// looping forever.
	q, err := v.DeclareQueue(QueueConfig{Name: "loop", Args: map[string]any{"x-message-ttl": int32(1), "x-dead-letter-exchange": ""}}, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	pub(t, v, "loop", "m")
	deadline := time.Now().Add(2 * time.Second)
	for b.stats.deadLetterDropped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ready, _, _ := q.Counts(); ready != 0 || b.stats.deadLetterDropped.Load() != 1 {
		t.Fatalf("ready %d, dropped %d", ready, b.stats.deadLetterDropped.Load())
	}
}

func TestTopicRoutingThroughVHost(t *testing.T) {
	t.Parallel()
	b := New(Config{})
	v := b.VHost("/")
	a, _ := v.DeclareQueue(QueueConfig{Name: "a"}, false, 1)
	_ = v.BindQueue("a", "amq.topic", "sensors.*.temp", nil, 1)
	var s RouteScratch
	res, _ := v.Publish(&s, &message.Message{Exchange: "amq.topic", RoutingKey: "sensors.kitchen.temp", Body: []byte("21")}, nil, 0)
	miss, _ := v.Publish(&s, &message.Message{Exchange: "amq.topic", RoutingKey: "sensors.kitchen.humidity", Body: []byte("40")}, nil, 0)
	if res.Routed != 1 || miss.Routed != 0 {
		t.Fatalf("routed %d and %d", res.Routed, miss.Routed)
	}
	if r, _, _ := a.Counts(); r != 1 {
		t.Fatal(r)
	}
	if b.Stats().Unroutable != 1 {
		t.Fatal("unroutable not counted")
	}
}
