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
	b.ReportAllocs()
	for b.Loop() {
		s.sample()
	}
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
