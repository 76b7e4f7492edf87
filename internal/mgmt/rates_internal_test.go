package mgmt

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// Rates are the counters' change between two samples over the time
// between them: a queue's and the node's publish, deliver and ack rates,
// and the depth's rate of change, negative while it shrinks.
func TestRatesSampledBetweenTwoSamples(t *testing.T) {
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	q, err := v.DeclareQueue(broker.QueueConfig{Name: "q"}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s := newRateSampler(Sources{Broker: b.Stats, API: &API{Broker: b}}, func() time.Time { return now })
	publish := func(n int) {
		var sc broker.RouteScratch
		for range n {
			if _, err := v.Publish(&sc, &message.Message{RoutingKey: "q", Body: []byte("m")}, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(3)
	s.sample()
	if r := s.queueRate(qkey{"/", "q"}); r.Publish != 0 {
		t.Errorf("first sample: rate %v, want 0 (nothing to compare with)", r.Publish)
	}
	publish(10)
	now = now.Add(2 * time.Second)
	s.sample()
	r := s.queueRate(qkey{"/", "q"})
	if r.Publish != 5 || r.Messages != 5 || r.Ready != 5 {
		t.Errorf("after 10 publishes in 2 s: %+v, want publish, messages and ready 5/s", r)
	}
	if g := s.globalView(); g.publish.rate != 5 {
		t.Errorf("node publish rate %v, want 5", g.publish.rate)
	}
	for range 4 {
		d, ok := q.Get(false)
		if !ok {
			t.Fatal("no message")
		}
		q.Ack(d)
	}
	now = now.Add(time.Second)
	s.sample()
	r = s.queueRate(qkey{"/", "q"})
	if r.Publish != 0 || r.Deliver != 4 || r.Ack != 4 || r.Messages != -4 {
		t.Errorf("after 4 gets and acks in 1 s: %+v", r)
	}
	if _, err := v.DeleteQueue("q", false, false, 0); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	s.sample()
	if n := s.sampledQueues(); n != 0 {
		t.Errorf("%d queues' rates kept after the queue was deleted", n)
	}
	// Without a ticker a request samples once the last sample is a second old.
	last := s.last
	s.fresh(false)
	if s.last != last {
		t.Error("sampled again within the interval")
	}
	now = now.Add(time.Second)
	s.fresh(false)
	if !s.last.Equal(now) {
		t.Error("a stale sample was not renewed")
	}
}

// BenchmarkSample10kQueues is one rate sample of 10,000 queues: the
// sampler's cost each second.
func BenchmarkSample10kQueues(b *testing.B) {
	br := broker.New(broker.Config{})
	v := br.VHost("/")
	for i := range 10_000 {
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: "q" + itoaInt(i)}, false, 0); err != nil {
			b.Fatal(err)
		}
	}
	s := newRateSampler(Sources{Broker: br.Stats, API: &API{Broker: br}}, nil)
	var sc broker.RouteScratch
	s.sample() // the first reads every queue
	var sampling time.Duration
	b.ReportAllocs()
	for b.Loop() {
		// 100 of them (1%) take a message between two samples.
		for i := range 100 {
			if _, err := v.Publish(&sc, &message.Message{RoutingKey: "q" + itoaInt(i*100), Body: []byte("m")}, nil, 0); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		s.sample()
		sampling += time.Since(t0)
	}
	b.ReportMetric(float64(sampling.Microseconds())/float64(b.N), "sample-us/op")
}

func itoaInt(i int) string { return itoa(i) }

// A queue never used (an offline MQTT session's, by the thousand) keeps no
// rate sample; once it is used, its first sampled interval counts from
// zero, as it had nothing at the sample before.
func TestRatesSkipUnusedQueues(t *testing.T) {
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	if _, err := v.DeclareQueue(broker.QueueConfig{Name: "idle"}, false, 0); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s := newRateSampler(Sources{Broker: b.Stats, API: &API{Broker: b}}, func() time.Time { return now })
	s.sample()
	if n := s.sampledQueues(); n != 0 {
		t.Fatalf("%d samples kept for an unused queue", n)
	}
	var sc broker.RouteScratch
	for range 6 {
		if _, err := v.Publish(&sc, &message.Message{RoutingKey: "idle", Body: []byte("m")}, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Second)
	s.sample()
	if r := s.queueRate(qkey{"/", "idle"}); r.Publish != 3 || r.Ready != 3 {
		t.Errorf("6 publishes in 2 s to a queue unused before: %+v, want publish and ready 3/s", r)
	}
}

// A sample reads the queues that moved since the last one, and those whose
// rates fall to zero now, not every queue: 1,000 idle queues cost nothing
// once read. What only changes a queue's depth (a purge, a get) is seen,
// and the node's ready and unacked gauges stay the broker's sum of every
// queue's counts through publishes, deliveries and deletes.
func TestRatesReadOnlyQueuesThatMoved(t *testing.T) {
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	for i := range 1000 {
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: "idle" + itoaInt(i)}, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"a", "b"} {
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: n}, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Unix(1_700_000_000, 0)
	s := newRateSampler(Sources{Broker: b.Stats, API: &API{Broker: b}}, func() time.Time { return now })
	var sc broker.RouteScratch
	publish := func(q string, n int) {
		for range n {
			if _, err := v.Publish(&sc, &message.Message{RoutingKey: q, Body: []byte("m")}, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	tick := func() {
		now = now.Add(time.Second)
		s.sample()
	}
	gauges := func(when string) {
		t.Helper()
		st := b.Stats()
		s.mu.Lock()
		r, u := s.ready, s.unacked
		s.mu.Unlock()
		if r != st.MessagesReady || u != st.MessagesUnacked {
			t.Errorf("%s: sampler's ready %d, unacked %d; broker's %d, %d", when, r, u, st.MessagesReady, st.MessagesUnacked)
		}
	}
	s.sample()
	if s.read < 1002 {
		t.Fatalf("first sample read %d queues, want all 1002", s.read)
	}
	publish("a", 4)
	publish("b", 2)
	tick()
	if s.read != 2 {
		t.Errorf("2 queues published to: %d read", s.read)
	}
	gauges("after publishes")
	qa, _ := v.Queue("a", 0)
	d, ok := qa.Get(false)
	if !ok {
		t.Fatal("no message")
	}
	tick()
	if r := s.queueRate(qkey{"/", "a"}); r.Publish != 0 || r.Deliver != 1 || r.Ready != -1 || r.Unacked != 1 {
		t.Errorf("a after a get: %+v", r)
	}
	if r := s.queueRate(qkey{"/", "b"}); r.Publish != 0 || r.Messages != 0 {
		t.Errorf("b idle for a second: %+v, want zero rates", r)
	}
	gauges("after a get")
	qa.Ack(d)
	tick() // the ack
	tick() // a's rates fall to zero
	if s.read != 1 {
		t.Errorf("one queue's rates to zero: %d queues read", s.read)
	}
	tick()
	if s.read != 0 {
		t.Errorf("nothing moved for a second: %d queues read", s.read)
	}
	if r := s.queueRate(qkey{"/", "a"}); r != (queueRateView{}) {
		t.Errorf("a idle: %+v", r)
	}
	gauges("idle")
	qb, _ := v.Queue("b", 0)
	qb.Purge()
	tick()
	if r := s.queueRate(qkey{"/", "b"}); r.Messages != -2 || r.Ready != -2 {
		t.Errorf("b purged of 2 in a second: %+v", r)
	}
	gauges("after a purge")
	publish("idle7", 3)
	if _, err := v.DeleteQueue("a", false, false, 0); err != nil {
		t.Fatal(err)
	}
	tick()
	gauges("after a delete")
	if _, ok := s.queues[qkey{"/", "a"}]; ok {
		t.Error("a deleted queue's rates kept")
	}
	if r := s.queueRate(qkey{"/", "idle7"}); r.Publish != 3 {
		t.Errorf("a queue idle until now, 3 publishes: %+v", r)
	}
	// A queue deleted and declared again under its name counts afresh.
	if _, err := v.DeleteQueue("idle7", false, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeclareQueue(broker.QueueConfig{Name: "idle7"}, false, 0); err != nil {
		t.Fatal(err)
	}
	publish("idle7", 1)
	tick()
	if r := s.queueRate(qkey{"/", "idle7"}); r.Publish != 1 || r.Ready != 1 {
		t.Errorf("idle7 declared again, 1 publish: %+v", r)
	}
	gauges("after a queue declared again")
}
