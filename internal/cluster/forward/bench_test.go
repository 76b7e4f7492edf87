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
