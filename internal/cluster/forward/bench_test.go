package forward

import (
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// window is a publisher's confirm window: at most n outstanding.
type window struct {
	sem  chan struct{}
	mu   sync.Mutex
	nack int
	wg   sync.WaitGroup
}

func (w *window) Durable(_ uint64, err error) {
	if err != nil {
		w.mu.Lock()
		w.nack++
		w.mu.Unlock()
	}
	<-w.sem
	w.wg.Done()
}

func (w *window) DurableBatchEnd() {}

// benchPublish publishes b.N persistent 1 KiB messages with confirms (a
// window of 1024 per publisher, 4 publishers) from node `from` to a
// queue node 1 holds.
func benchPublish(b *testing.B, from int) {
	ns := newClusterB(b)
	if _, err := ns[0].v.DeclareQueue(broker.QueueConfig{Name: "q", Durable: true}, false, 1); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	const publishers = 4
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	var all sync.WaitGroup
	var nacks int
	var mu sync.Mutex
	for p := range publishers {
		all.Add(1)
		go func() {
			defer all.Done()
			w := &window{sem: make(chan struct{}, 1024)}
			var s broker.RouteScratch
			for i := p; i < b.N; i += publishers {
				w.sem <- struct{}{}
				w.wg.Add(1)
				m := &message.Message{RoutingKey: "q", Body: body, Props: message.Properties{DeliveryMode: 2}}
				res, err := ns[from].v.Publish(&s, m, w, uint64(i))
				if err != nil || res.Pending == 0 {
					<-w.sem
					w.wg.Done()
				}
			}
			w.wg.Wait()
			mu.Lock()
			nacks += w.nack
			mu.Unlock()
		}()
	}
	all.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	if nacks > 0 {
		b.Fatalf("%d nacks", nacks)
	}
}

// BenchmarkPublishLocal is the baseline: publishes on the queue's node.
func BenchmarkPublishLocal(b *testing.B) { benchPublish(b, 0) }

// BenchmarkPublishForwarded publishes on node 2 to node 1's queue over TCP.
func BenchmarkPublishForwarded(b *testing.B) { benchPublish(b, 1) }

// benchConsume fills node 1's queue with b.N 1 KiB messages and consumes
// them on node `on` (acking each, prefetch 100), timing the consumption.
func benchConsume(b *testing.B, on int) {
	ns := newClusterB(b)
	if _, err := ns[0].v.DeclareQueue(broker.QueueConfig{Name: "q"}, false, 1); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	var s broker.RouteScratch
	for range b.N {
		if _, err := ns[0].v.Publish(&s, &message.Message{RoutingKey: "q", Body: body}, nil, 0); err != nil {
			b.Fatal(err)
		}
	}
	q, err := ns[on].v.Queue("q", 0)
	if err != nil {
		b.Fatal(err)
	}
	c := newConsumer(100, false)
	b.SetBytes(1024)
	b.ResetTimer()
	start := time.Now()
	if err := q.Consume(c, broker.ConsumeOptions{Prefetch: 100}); err != nil {
		b.Fatal(err)
	}
	for got := 0; got < b.N; {
		select {
		case <-c.ch:
		case <-time.After(10 * time.Millisecond):
		}
		ds := c.take()
		got += len(ds)
		if len(ds) > 0 {
			q.Ack(ds...)
			q.Dispatch()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// BenchmarkConsumeLocal is the baseline: a consumer on the queue's node.
func BenchmarkConsumeLocal(b *testing.B) { benchConsume(b, 0) }

// BenchmarkConsumeForwarded consumes node 1's queue on node 2 over TCP.
func BenchmarkConsumeForwarded(b *testing.B) { benchConsume(b, 1) }
