package broker_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

func newVHost() *broker.VHost { return broker.New(broker.Config{}).VHost("/") }

func TestCoreFIFO(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	var want []string
	for i := range 100 {
		want = append(want, fmt.Sprint(i))
		send(t, v, "", "q", want[i], message.Properties{})
	}
	if c := counts(q); c != [3]int{100, 0, 0} {
		t.Fatalf("counts %v", c)
	}
	d, ok := q.Get(false)
	if !ok || string(d.Msg.Body) != "0" || d.Redelivered || d.Remaining != 99 {
		t.Fatalf("get: %q ok=%v redelivered=%v remaining=%d", d.Msg.Body, ok, d.Redelivered, d.Remaining)
	}
	q.Ack(d)
	if got := drain(q); !slices.Equal(got, want[1:]) {
		t.Fatalf("order %v", got)
	}
	if c := counts(q); c != [3]int{0, 0, 0} {
		t.Fatalf("counts after drain %v", c)
	}
}

func TestCoreRoundRobinAcrossConsumers(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	cs := []*taker{newTaker(-1), newTaker(-1), newTaker(-1)}
	for _, c := range cs {
		if err := q.Consume(c, broker.ConsumeOptions{NoAck: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 9 {
		send(t, v, "", "q", fmt.Sprint(i), message.Properties{})
	}
	for i, c := range cs {
		got := c.bodies()
		want := []string{fmt.Sprint(i), fmt.Sprint(i + 3), fmt.Sprint(i + 6)}
		if !slices.Equal(got, want) {
			t.Errorf("consumer %d got %v, want %v", i, got, want)
		}
	}
}

func TestCorePrefetchHoldsBackUntilAck(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	c := newTaker(2)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		send(t, v, "", "q", fmt.Sprint(i), message.Properties{})
	}
	if got := c.bodies(); !slices.Equal(got, []string{"0", "1"}) {
		t.Fatalf("before ack: %v", got)
	}
	if cnt := counts(q); cnt != [3]int{3, 2, 1} {
		t.Fatalf("counts %v, want 3 ready 2 unacked 1 consumer", cnt)
	}
	c.settle(1)
	q.Ack(c.deliveries()[0])
	if got := c.bodies(); !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("after one ack: %v", got)
	}
	if cnt := counts(q); cnt != [3]int{2, 2, 1} {
		t.Fatalf("counts %v", cnt)
	}
}

func TestCoreRequeueKeepsOrderAndMarksRedelivered(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		send(t, v, "", "q", s, message.Properties{})
	}
	var ds []broker.Delivery
	for range 3 {
		d, ok := q.Get(false)
		if !ok {
			t.Fatal("empty")
		}
		ds = append(ds, d)
	}
	q.Ack(ds[1])                        // b is done
	q.Requeue([]broker.Delivery{ds[2]}) // c back first, then a
	q.Requeue([]broker.Delivery{ds[0]}) // a goes ahead of c: original order
	if cnt := counts(q); cnt != [3]int{4, 0, 0} {
		t.Fatalf("counts %v", cnt)
	}
	var got []string
	for range 4 {
		d, _ := q.Get(true)
		got = append(got, fmt.Sprintf("%s:%v", d.Msg.Body, d.Redelivered))
	}
	if want := []string{"a:true", "c:true", "d:false", "e:false"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCoreRequeueRedeliversToConsumer(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	c := newTaker(1)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	send(t, v, "", "q", "x", message.Properties{})
	send(t, v, "", "q", "y", message.Properties{})
	first := c.deliveries()[0]
	c.settle(1)
	q.Requeue([]broker.Delivery{first}) // basic.nack requeue=true
	ds := c.deliveries()
	if len(ds) != 2 || string(ds[1].Msg.Body) != "x" || !ds[1].Redelivered {
		t.Fatalf("deliveries %v", c.bodies())
	}
}

func TestCoreRejectWithoutDeadLetterDrops(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	send(t, v, "", "q", "x", message.Properties{})
	d, _ := q.Get(false)
	q.Reject([]broker.Delivery{d})
	if cnt := counts(q); cnt != [3]int{0, 0, 0} {
		t.Fatalf("counts %v", cnt)
	}
}

func TestCoreQueueTTLExpiresAtTheHead(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-message-ttl": int32(60_000)}})
	// Published is when the broker took the message; back-dating it stands
	// in for a clock (there is no clock hook for TTLs).
	old := time.Now().Add(-time.Hour).UnixNano()
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("old"), Published: old})
	send(t, v, "", "q", "fresh", message.Properties{})
	if got := drain(q); !slices.Equal(got, []string{"fresh"}) {
		t.Fatalf("got %v, want only the fresh message", got)
	}
}

func TestCorePerMessageTTL(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	old := time.Now().Add(-time.Minute).UnixNano()
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("expired"), Published: old, Props: message.Properties{Expiration: "1000"}})
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("alive"), Published: old, Props: message.Properties{Expiration: "3600000"}})
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("forever"), Published: old})
	if got := drain(q); !slices.Equal(got, []string{"alive", "forever"}) {
		t.Fatalf("got %v", got)
	}
}

// TestCoreTTLZeroDeliversOnlyToAWaitingConsumer: RabbitMQ delivers a
// message with TTL 0 if a consumer can take it at once, and drops it
// otherwise.
func TestCoreTTLZeroDeliversOnlyToAWaitingConsumer(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-message-ttl": int32(0)}})
	send(t, v, "", "q", "nobody", message.Properties{})
	if got := drain(q); len(got) != 0 {
		t.Fatalf("an unconsumed TTL-0 message was kept: %v", got)
	}
	c := newTaker(-1)
	if err := q.Consume(c, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	send(t, v, "", "q", "taken", message.Properties{})
	if got := c.bodies(); !slices.Equal(got, []string{"taken"}) {
		t.Fatalf("consumer got %v", got)
	}
}

// TestCoreTTLTimerExpiresWithoutConsumers runs the queue's own expiry
// timer on the broker's clock: a message with a 20 ms TTL is still there at
// 19 ms and dead-lettered at 20 ms without anyone touching the queue.
func TestCoreTTLTimerExpiresWithoutConsumers(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	v := broker.New(broker.Config{Clock: clk}).VHost("/")
	dlq := declare(t, v, broker.QueueConfig{Name: "dead"})
	// Dead-letter by routing key "dead" through the default exchange.
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-message-ttl": int32(20), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}})
	send(t, v, "", "q", "m", message.Properties{})
	clk.Advance(19 * time.Millisecond)
	if r, _, _ := dlq.Counts(); r != 0 {
		t.Fatal("the message expired before its TTL")
	}
	clk.Advance(time.Millisecond)
	if r, _, _ := dlq.Counts(); r != 1 {
		t.Fatal("the message did not expire into the dead-letter queue at its TTL")
	}
	if cnt := counts(q); cnt != [3]int{0, 0, 0} {
		t.Fatalf("source counts %v", cnt)
	}
	d, _ := dlq.Get(true)
	if r := d.Msg.Props.Headers["x-first-death-reason"]; r != "expired" {
		t.Fatalf("x-first-death-reason %v", r)
	}
}

func TestCoreMaxLengthDropHead(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int32(2)}})
	for _, s := range []string{"a", "b", "c", "d"} {
		if res := send(t, v, "", "q", s, message.Properties{}); res.Routed != 1 || res.Rejected {
			t.Fatalf("publish %s: %+v", s, res)
		}
	}
	if got := drain(q); !slices.Equal(got, []string{"c", "d"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreMaxLengthBytesDropHead(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length-bytes": int32(10)}})
	for _, s := range []string{"aaaa", "bbbb", "cccc"} {
		send(t, v, "", "q", s, message.Properties{})
	}
	if got := drain(q); !slices.Equal(got, []string{"bbbb", "cccc"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreMaxLengthRejectPublish(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int32(2), "x-overflow": "reject-publish"}})
	send(t, v, "", "q", "a", message.Properties{})
	send(t, v, "", "q", "b", message.Properties{})
	if res := send(t, v, "", "q", "c", message.Properties{}); !res.Rejected || res.Routed != 0 {
		t.Fatalf("third publish %+v, want rejected", res)
	}
	// Unacked messages do not count towards the limit (RabbitMQ counts ready).
	d, _ := q.Get(false)
	if res := send(t, v, "", "q", "d", message.Properties{}); res.Rejected {
		t.Fatalf("publish with one slot free was rejected")
	}
	q.Ack(d)
	if got := drain(q); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreMaxLengthRejectPublishDLX(t *testing.T) {
	t.Parallel()
	v := newVHost()
	dlq := declare(t, v, broker.QueueConfig{Name: "dead"})
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int32(1), "x-overflow": "reject-publish-dlx",
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}})
	send(t, v, "", "q", "kept", message.Properties{})
	if res := send(t, v, "", "q", "refused", message.Properties{}); !res.Rejected {
		t.Fatalf("want rejected: %+v", res)
	}
	if got := drain(q); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("queue %v", got)
	}
	d, ok := dlq.Get(true)
	if !ok || string(d.Msg.Body) != "refused" || d.Msg.Props.Headers["x-first-death-reason"] != "maxlen" {
		t.Fatalf("dead-lettered %q ok=%v headers %v", d.Msg.Body, ok, d.Msg.Props.Headers)
	}
}

// TestCoreDeadLetteringWritesXDeath checks the x-death RabbitMQ writes
// (https://www.rabbitmq.com/docs/dlx): one entry per queue and reason,
// newest first, count bumped on repeat, original-expiration kept and the
// expiration removed, x-first-death-* set once, x-last-death-* each time.
func TestCoreDeadLetteringWritesXDeath(t *testing.T) {
	t.Parallel()
	v := newVHost()
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "dlx", Type: broker.TypeFanout}, false); err != nil {
		t.Fatal(err)
	}
	work := declare(t, v, broker.QueueConfig{Name: "work", Args: map[string]any{"x-dead-letter-exchange": "dlx"}})
	retry := declare(t, v, broker.QueueConfig{Name: "retry", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "work"}})
	if err := v.BindQueue("retry", "dlx", "", nil, 1); err != nil {
		t.Fatal(err)
	}
	send(t, v, "", "work", "job", message.Properties{Expiration: "600000", Headers: map[string]any{"app": "x"}})

	// work rejects → retry; retry rejects → work; work rejects again.
	for i, q := range []*broker.Queue{work, retry, work} {
		d, ok := q.Get(false)
		if !ok {
			t.Fatalf("step %d: %s empty", i, q.Name())
		}
		q.Reject([]broker.Delivery{d})
	}
	d, ok := retry.Get(true)
	if !ok {
		t.Fatal("message lost")
	}
	h := d.Msg.Props.Headers
	if h["app"] != "x" || d.Msg.Props.Expiration != "" {
		t.Errorf("headers %v expiration %q", h, d.Msg.Props.Expiration)
	}
	deaths, _ := h["x-death"].([]any)
	if len(deaths) != 2 {
		t.Fatalf("x-death %v", h["x-death"])
	}
	first := deaths[0].(map[string]any)
	second := deaths[1].(map[string]any)
	if first["queue"] != "work" || first["reason"] != "rejected" || first["count"] != int64(2) ||
		first["exchange"] != "" || !slices.Equal(first["routing-keys"].([]any), []any{"work"}) ||
		first["original-expiration"] != "600000" {
		t.Errorf("newest x-death %v", first)
	}
	if second["queue"] != "retry" || second["reason"] != "rejected" || second["count"] != int64(1) || second["exchange"] != "dlx" {
		t.Errorf("older x-death %v", second)
	}
	if _, ok := first["time"].(time.Time); !ok {
		t.Errorf("x-death time %T", first["time"])
	}
	if h["x-first-death-queue"] != "work" || h["x-first-death-reason"] != "rejected" || h["x-first-death-exchange"] != "" {
		t.Errorf("x-first-death-* %v", h)
	}
	if h["x-last-death-queue"] != "work" || h["x-last-death-reason"] != "rejected" {
		t.Errorf("x-last-death-* %v", h)
	}
}

// TestCoreDeadLetterCycleWithoutRejectIsDropped: RabbitMQ drops a message
// that would go round a dead-letter cycle with no rejection in it.
func TestCoreDeadLetterCycleWithoutRejectIsDropped(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-dead-letter-exchange": "", "x-max-length": int32(1)}})
	send(t, v, "", "q", "a", message.Properties{})
	send(t, v, "", "q", "b", message.Properties{}) // a dead-letters to q itself: a cycle
	if got := drain(q); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCorePriorities(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-priority": int32(5)}})
	for i, p := range []uint8{1, 9, 3, 0, 5, 3} {
		send(t, v, "", "q", fmt.Sprintf("%d-p%d", i, p), message.Properties{Priority: p})
	}
	// Above x-max-priority counts as the maximum; equal priorities stay FIFO.
	want := []string{"1-p9", "4-p5", "2-p3", "5-p3", "0-p1", "3-p0"}
	if got := drain(q); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCorePrioritiesIgnoredWithoutMaxPriority(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	send(t, v, "", "q", "low", message.Properties{Priority: 0})
	send(t, v, "", "q", "high", message.Properties{Priority: 9})
	if got := drain(q); !slices.Equal(got, []string{"low", "high"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreConsumerPriorities(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	low, high := newTaker(-1), newTaker(1)
	if err := q.Consume(low, broker.ConsumeOptions{Priority: 0}); err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(high, broker.ConsumeOptions{Priority: 10}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c"} {
		send(t, v, "", "q", s, message.Properties{})
	}
	// The high-priority consumer gets what it can take; the rest overflow.
	if got := high.bodies(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("high got %v", got)
	}
	if got := low.bodies(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("low got %v", got)
	}
}

func TestCoreSingleActiveConsumer(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-single-active-consumer": true}})
	first, second := newTaker(-1), newTaker(-1)
	for _, c := range []*taker{first, second} {
		if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"a", "b", "c"} {
		send(t, v, "", "q", s, message.Properties{})
	}
	if got := first.bodies(); !slices.Equal(got, []string{"a", "b", "c"}) || len(second.bodies()) != 0 {
		t.Fatalf("first %v second %v", got, second.bodies())
	}
	// What /api/consumers shows (RabbitMQ's activity_status; user7 5.3).
	if s1, s2 := q.ConsumerStatus(first), q.ConsumerStatus(second); s1.String() != "single_active" || s2.String() != "waiting" || s2.Active() {
		t.Fatalf("statuses: first %v, second %v (active %v)", s1, s2, s2.Active())
	}
	// The active consumer leaves with its messages unacked; they come back
	// and the next consumer becomes active with them, in order.
	q.Cancel(first)
	q.Requeue(first.deliveries())
	if got := second.bodies(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("second after hand-over %v", got)
	}
	if s2 := q.ConsumerStatus(second); s2 != broker.ConsumerSingleActive {
		t.Fatalf("status after hand-over: %v", s2)
	}
	for _, d := range second.deliveries() {
		if !d.Redelivered {
			t.Errorf("%s not marked redelivered", d.Msg.Body)
		}
	}
}

func TestCoreExclusiveQueueGoesWithItsConnection(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q, err := v.DeclareQueue(broker.QueueConfig{Name: "q", Exclusive: true}, false, 7)
	if err != nil {
		t.Fatal(err)
	}
	if q.Config().Owner != 7 {
		t.Fatalf("owner %d", q.Config().Owner)
	}
	c := newTaker(-1)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	v.DeleteExclusive(8) // another connection closing changes nothing
	if _, err := v.Queue("q", 7); err != nil {
		t.Fatal(err)
	}
	v.DeleteExclusive(7)
	if _, err := v.Queue("q", 7); err == nil {
		t.Fatal("exclusive queue outlived its connection")
	}
	select {
	case <-c.cancelled:
	default:
		t.Fatal("consumer of the deleted queue was not cancelled")
	}
}

func TestCoreAutoDeleteAfterLastConsumer(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q", AutoDelete: true})
	// Never consumed: it stays (RabbitMQ deletes only after a consumer left).
	if _, err := v.Queue("q", 1); err != nil {
		t.Fatal(err)
	}
	a, b := newTaker(-1), newTaker(-1)
	_ = q.Consume(a, broker.ConsumeOptions{})
	_ = q.Consume(b, broker.ConsumeOptions{})
	q.Cancel(a)
	if _, err := v.Queue("q", 1); err != nil {
		t.Fatalf("deleted with a consumer left: %v", err)
	}
	q.Cancel(b)
	if _, err := v.Queue("q", 1); err == nil {
		t.Fatal("auto-delete queue outlived its last consumer")
	}
}

func TestCoreQueueExpiresWhenUnused(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	v := broker.New(broker.Config{Clock: clk}).VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-expires": int32(30)}})
	c := newTaker(-1)
	_ = q.Consume(c, broker.ConsumeOptions{})
	// With a consumer it is in use however long it waits; the countdown
	// starts once the consumer goes.
	clk.Advance(time.Second)
	if _, err := v.Queue("q", 1); err != nil {
		t.Fatalf("a queue in use expired: %v", err)
	}
	q.Cancel(c)
	clk.Advance(29 * time.Millisecond)
	if _, err := v.Queue("q", 1); err != nil {
		t.Fatalf("the queue expired before x-expires: %v", err)
	}
	clk.Advance(time.Millisecond)
	if _, err := v.Queue("q", 1); err == nil {
		t.Fatal("the unused queue outlived x-expires")
	}
}

func TestCoreDeleteAndPurge(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	for i := range 3 {
		send(t, v, "", "q", fmt.Sprint(i), message.Properties{})
	}
	if n, err := v.PurgeQueue("q", 1); err != nil || n != 3 {
		t.Fatalf("purge %d %v", n, err)
	}
	send(t, v, "", "q", "x", message.Properties{})
	send(t, v, "", "q", "y", message.Properties{})
	c := newTaker(-1)
	_ = q.Consume(c, broker.ConsumeOptions{}) // takes both: 0 ready
	send(t, v, "", "q", "z", message.Properties{})
	c2 := newTaker(0) // takes nothing: z stays ready
	_ = q.Consume(c2, broker.ConsumeOptions{})
	n, err := v.DeleteQueue("q", false, false, 1)
	if err != nil || n != 0 {
		t.Fatalf("delete: %d %v (the consumer took every message)", n, err)
	}
	for _, tk := range []*taker{c, c2} {
		select {
		case <-tk.cancelled:
		default:
			t.Fatal("a consumer was not cancelled by the delete")
		}
	}
	if res := send(t, v, "", "q", "late", message.Properties{}); res.Routed != 0 {
		t.Fatalf("publish to a deleted queue routed: %+v", res)
	}
}

func TestCoreRoutingThroughExchanges(t *testing.T) {
	t.Parallel()
	v := newVHost()
	for _, n := range []string{"a", "b", "other"} {
		declare(t, v, broker.QueueConfig{Name: n})
	}
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "t", Type: broker.TypeTopic}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "ae", Type: broker.TypeFanout}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "d", Type: broker.TypeDirect, Args: map[string]any{"alternate-exchange": "ae"}}, false); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][3]string{{"a", "t", "logs.*"}, {"b", "t", "logs.#"}, {"other", "ae", ""}} {
		if err := v.BindQueue(b[0], b[1], b[2], nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.BindExchange("t", "d", "logs.x", nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		x, key string
		routed int
	}{
		{"t", "logs.x", 2}, {"t", "logs.x.y", 1}, {"t", "nothing", 0},
		{"d", "logs.x", 2}, // through the exchange-to-exchange binding
		{"d", "nope", 1},   // to the alternate exchange
	}
	for _, tc := range cases {
		if res := send(t, v, tc.x, tc.key, "m", message.Properties{}); res.Routed != tc.routed {
			t.Errorf("%s %q routed %d, want %d", tc.x, tc.key, res.Routed, tc.routed)
		}
	}
	total := 0
	for _, q := range v.Queues() {
		r, _, _ := q.Counts()
		total += r
	}
	if total != 6 {
		t.Errorf("%d messages queued, want 6", total)
	}
	if !strings.HasPrefix(declare(t, v, broker.QueueConfig{}).Name(), "amq.gen-") {
		t.Error("server-named queue lacks the amq.gen- prefix")
	}
}

// TestCoreTTLOnlyAtTheHead: as in RabbitMQ's classic queues, an expired
// message behind a live one leaves only when it reaches the head.
func TestCoreTTLOnlyAtTheHead(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	old := time.Now().Add(-time.Hour).UnixNano()
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("live"), Published: old, Props: message.Properties{Expiration: "86400000"}})
	sendMsg(t, v, &message.Message{RoutingKey: "q", Body: []byte("dead"), Published: old, Props: message.Properties{Expiration: "1"}})
	if r, _, _ := q.Counts(); r != 2 {
		t.Fatalf("ready %d: the expired message behind the head should still count", r)
	}
	if got := drain(q); !slices.Equal(got, []string{"live"}) {
		t.Fatalf("got %v", got)
	}
	if r, _, _ := q.Counts(); r != 0 {
		t.Fatalf("ready %d after the head moved", r)
	}
}

func TestCoreDropHeadDeadLettersWithReasonMaxlen(t *testing.T) {
	t.Parallel()
	v := newVHost()
	dlq := declare(t, v, broker.QueueConfig{Name: "dead"})
	declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int32(1),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"}})
	send(t, v, "", "q", "first", message.Properties{})
	send(t, v, "", "q", "second", message.Properties{})
	d, ok := dlq.Get(true)
	if !ok || string(d.Msg.Body) != "first" {
		t.Fatalf("dead-lettered %q ok=%v", d.Msg.Body, ok)
	}
	deaths := d.Msg.Props.Headers["x-death"].([]any)
	if e := deaths[0].(map[string]any); e["reason"] != "maxlen" || e["queue"] != "q" || d.Msg.RoutingKey != "dead" {
		t.Fatalf("x-death %v routing key %q", e, d.Msg.RoutingKey)
	}
}

// TestCoreFullConsumerIsSkipped: a consumer at its prefetch limit is
// passed over and the message goes to the next one that can take it.
func TestCoreFullConsumerIsSkipped(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	full, free := newTaker(0), newTaker(-1)
	_ = q.Consume(full, broker.ConsumeOptions{})
	_ = q.Consume(free, broker.ConsumeOptions{})
	for _, s := range []string{"a", "b", "c"} {
		send(t, v, "", "q", s, message.Properties{})
	}
	if len(full.bodies()) != 0 || !slices.Equal(free.bodies(), []string{"a", "b", "c"}) {
		t.Fatalf("full %v free %v", full.bodies(), free.bodies())
	}
}

// TestCoreAckSeveralAtOnce is basic.ack with multiple: one call settles a
// batch, in any order, and frees the prefetch for the rest.
func TestCoreAckSeveralAtOnce(t *testing.T) {
	t.Parallel()
	v := newVHost()
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	c := newTaker(3)
	_ = q.Consume(c, broker.ConsumeOptions{})
	for i := range 6 {
		send(t, v, "", "q", fmt.Sprint(i), message.Properties{})
	}
	ds := c.deliveries()
	c.settle(3)
	q.Ack(ds[2], ds[0], ds[1])
	if got := c.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3", "4", "5"}) {
		t.Fatalf("got %v", got)
	}
	if cnt := counts(q); cnt != [3]int{0, 3, 1} {
		t.Fatalf("counts %v", cnt)
	}
}
