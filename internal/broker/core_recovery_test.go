package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/message"
)

// restart starts a new broker on st, as the server does at start-up: the
// previous broker's logs are detached, as if its process had died.
func restart(t *testing.T, st *memstore.Store) *broker.VHost {
	t.Helper()
	b := broker.New(broker.Config{Storage: st})
	if err := b.Restore(st.Definitions()); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if err := b.Replay(st.Commands()); err != nil {
		t.Fatalf("replay: %v", err)
	}
	return b.VHost("/")
}

var persistent = message.Properties{DeliveryMode: 2}

type confirm struct {
	token uint64
	err   error
}

// confirms is a Completion that records what the log reports.
type confirms chan confirm

func (c confirms) Durable(token uint64, err error) { c <- confirm{token, err} }

func TestCoreDurableQueueRecoversInOrder(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "dx", Type: broker.TypeDirect, Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	dq := declare(t, v, broker.QueueConfig{Name: "dq", Durable: true})
	declare(t, v, broker.QueueConfig{Name: "tq"})
	if _, err := v.DeclareQueue(broker.QueueConfig{Name: "ex", Durable: true, Exclusive: true}, false, 1); err != nil {
		t.Fatal(err)
	}
	if err := v.BindQueue("dq", "dx", "k", nil, 1); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		send(t, v, "dx", "k", fmt.Sprint(i), persistent)
		if i == 3 {
			send(t, v, "dx", "k", "transient", message.Properties{})
		}
	}
	send(t, v, "", "tq", "in a transient queue", persistent)
	d, _ := dq.Get(false)
	dq.Ack(d) // 1 is consumed
	if d, _ = dq.Get(false); string(d.Msg.Body) != "2" {
		t.Fatalf("second get %q", d.Msg.Body) // 2 is delivered, never acked
	}

	v = restart(t, st)
	for _, name := range []string{"tq", "ex"} {
		if _, err := v.Queue(name, 1); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("queue %s after restart: %v, want not found", name, err)
		}
	}
	dq, err := v.Queue("dq", 1)
	if err != nil {
		t.Fatal(err)
	}
	if c := counts(dq); c != [3]int{4, 0, 0} {
		t.Fatalf("recovered counts %v, want 4 ready", c)
	}
	// The durable exchange and binding came back: publishing through them
	// still reaches the queue, after the recovered messages.
	if res := send(t, v, "dx", "k", "6", persistent); res.Routed != 1 {
		t.Fatalf("publish after restart %+v", res)
	}

	v = restart(t, st) // again: numbering resumed past the old messages
	dq, _ = v.Queue("dq", 1)
	var got []string
	for range 10 {
		d, ok := dq.Get(false)
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s:%v", d.Msg.Body, d.Redelivered))
		dq.Ack(d)
	}
	want := []string{"2:true", "3:false", "4:false", "5:false", "6:false"}
	if !slices.Equal(got, want) {
		t.Fatalf("after restarts %v, want %v", got, want)
	}
	if v = restart(t, st); counts(mustQueue(t, v, "dq")) != [3]int{0, 0, 0} {
		t.Fatal("acked messages came back")
	}
}

func mustQueue(t *testing.T, v *broker.VHost, name string) *broker.Queue {
	t.Helper()
	q, err := v.Queue(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestCoreRecoveredConsumerDeliveryIsRedelivered(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "q", Durable: true})
	c := newTaker(1)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	send(t, v, "", "q", "a", persistent)
	send(t, v, "", "q", "b", persistent)
	v = restart(t, st) // a was with the consumer, unacked; b was ready
	c2 := newTaker(-1)
	if err := mustQueue(t, v, "q").Consume(c2, broker.ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range c2.deliveries() {
		got = append(got, fmt.Sprintf("%s:%v", d.Msg.Body, d.Redelivered))
	}
	if want := []string{"a:true", "b:false"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestCorePersistentPublishConfirmsOnceDurable(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	declare(t, v, broker.QueueConfig{Name: "dq", Durable: true})
	declare(t, v, broker.QueueConfig{Name: "tq"})
	if err := v.BindQueue("dq", "amq.fanout", "", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := v.BindQueue("tq", "amq.fanout", "", nil, 1); err != nil {
		t.Fatal(err)
	}
	done := make(confirms, 8)
	var s broker.RouteScratch
	res, err := v.Publish(&s, &message.Message{Exchange: "amq.fanout", Body: []byte("p"), Props: persistent}, done, 41)
	if err != nil || res.Routed != 2 || res.Pending != 1 {
		t.Fatalf("persistent publish %+v %v: want routed 2, pending 1 (only the durable queue logs)", res, err)
	}
	select {
	case c := <-done:
		if c.token != 41 || c.err != nil {
			t.Fatalf("confirm %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no confirm")
	}
	res, _ = v.Publish(&s, &message.Message{Exchange: "amq.fanout", Body: []byte("t")}, done, 42)
	if res.Routed != 2 || res.Pending != 0 {
		t.Fatalf("transient publish %+v: nothing to wait for", res)
	}
}

func TestCoreStorageFailureRejectsThePublish(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "q", Durable: true})
	st.SetAppendError(errors.New("disk gone"))
	if res := send(t, v, "", "q", "lost", persistent); !res.Rejected || res.Routed != 0 {
		t.Fatalf("publish while storage fails %+v, want rejected", res)
	}
	// A transient message needs no storage.
	if res := send(t, v, "", "q", "transient", message.Properties{}); res.Rejected {
		t.Fatal("transient publish rejected")
	}
	st.SetAppendError(nil)
	send(t, v, "", "q", "kept", persistent)
	if got := drain(q); !slices.Equal(got, []string{"transient", "kept"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreDeletedDurableQueueStaysDeleted(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st})
	v := b.VHost("/")
	declare(t, v, broker.QueueConfig{Name: "q", Durable: true})
	send(t, v, "", "q", "m", persistent)
	defs := b.Definitions()
	if len(defs.Queues) != 1 || !st.HasLog(defs.Queues[0].ID) {
		t.Fatalf("definitions %+v", defs.Queues)
	}
	if n, err := v.DeleteQueue("q", false, false, 1); n != 1 || err != nil {
		t.Fatalf("delete %d %v", n, err)
	}
	if st.HasLog(defs.Queues[0].ID) {
		t.Error("the deleted queue's log is still stored")
	}
	v = restart(t, st)
	if _, err := v.Queue("q", 1); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("deleted queue after restart: %v", err)
	}
}

// TestCoreTTLKeepsCountingAcrossRestart: a message's TTL counts from its
// publication, not from the restart (RabbitMQ keeps the expiry with the
// message). Real time: no clock hook for TTLs.
func TestCoreTTLKeepsCountingAcrossRestart(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	declare(t, v, broker.QueueConfig{Name: "q", Durable: true})
	old := time.Now().Add(-time.Hour).UnixNano()
	for _, m := range []*message.Message{
		{RoutingKey: "q", Body: []byte("short"), Published: old, Props: message.Properties{DeliveryMode: 2, Expiration: "60000"}},
		{RoutingKey: "q", Body: []byte("long"), Published: old, Props: message.Properties{DeliveryMode: 2, Expiration: "86400000"}},
	} {
		sendMsg(t, v, m)
	}
	v = restart(t, st)
	q := mustQueue(t, v, "q")
	waitFor(t, 5*time.Second, "the expired message to leave on its own", func() bool {
		r, _, _ := q.Counts()
		return r == 1
	})
	if got := drain(q); !slices.Equal(got, []string{"long"}) {
		t.Fatalf("got %v", got)
	}
}

func TestCoreStreamOnMemStore(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	v := broker.New(broker.Config{Storage: st}).VHost("/")
	s := declare(t, v, broker.QueueConfig{Name: "s", Durable: true, Args: map[string]any{"x-queue-type": "stream"}})
	if !s.IsStream() {
		t.Fatal("not a stream")
	}
	for _, b := range []string{"a", "b", "c"} {
		send(t, v, "", "s", b, persistent)
	}
	read := func(s *broker.Queue, offset any, n int) []string {
		t.Helper()
		c := newTaker(-1)
		if err := s.Consume(c, broker.ConsumeOptions{NoAck: true, Stream: broker.StreamOptions{Offset: offset}}); err != nil {
			t.Fatal(err)
		}
		defer s.Cancel(c)
		waitFor(t, 5*time.Second, fmt.Sprintf("%d stream deliveries", n), func() bool { return len(c.deliveries()) >= n })
		var out []string
		for _, d := range c.deliveries() {
			out = append(out, fmt.Sprintf("%s@%v", d.Msg.Body, d.Msg.Props.Headers[broker.StreamHeaderOffset]))
		}
		return out
	}
	if got := read(s, "first", 3); !slices.Equal(got, []string{"a@0", "b@1", "c@2"}) {
		t.Fatalf("first read %v", got)
	}
	v = restart(t, st)
	s = mustQueue(t, v, "s")
	send(t, v, "", "s", "d", persistent)
	if got := read(s, int64(2), 2); !slices.Equal(got, []string{"c@2", "d@3"}) {
		t.Fatalf("after restart, from offset 2: %v", got)
	}
	if r, _, _ := s.Counts(); r != 4 {
		t.Fatalf("stream holds %d, want 4", r)
	}
}
