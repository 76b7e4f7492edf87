package amqp_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// benchURL returns TERN_BENCH_URL or an in-process server's URL.
func benchURL(b *testing.B) string {
	if url := os.Getenv("TERN_BENCH_URL"); url != "" {
		return url
	}
	return testkit.Start(b).URL
}

func benchChannel(b *testing.B, url string) *amqp.Channel {
	b.Helper()
	c, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	ch, err := c.Channel()
	if err != nil {
		b.Fatal(err)
	}
	return ch
}

func durableBenchQueue(b *testing.B, ch *amqp.Channel) string {
	b.Helper()
	name := fmt.Sprintf("bench-durable-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(name, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _, _ = ch.QueueDelete(name, false, false, false) })
	return name
}

// BenchmarkDurableConfirms: a durable queue, persistent 1 KiB messages,
// publisher confirms with 1,000 in flight, a consumer acking each message
// with prefetch 1,000 — the durable workload. TERN_BENCH_URL
// points it at another broker.
func BenchmarkDurableConfirms(b *testing.B) {
	url := benchURL(b)
	pub := benchChannel(b, url)
	q := durableBenchQueue(b, pub)
	_ = pub.Confirm(false)
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, 2048))
	sub := benchChannel(b, url)
	_ = sub.Qos(1000, 0, false)
	msgs, err := sub.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	done := make(chan struct{})
	b.SetBytes(1024)
	b.ResetTimer()
	go func() {
		defer close(done)
		for i := 0; i < b.N; i++ {
			m := <-msgs
			_ = m.Ack(false)
		}
	}()
	inFlight := 0
	for i := 0; i < b.N; i++ {
		if err := pub.Publish("", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			b.Fatal(err)
		}
		for inFlight++; inFlight >= 1000; inFlight-- {
			if c := <-confirms; !c.Ack {
				b.Fatal("nack")
			}
		}
	}
	for ; inFlight > 0; inFlight-- {
		<-confirms
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

// BenchmarkConfirmLatencyAt5k publishes persistent 1 KiB messages to a
// durable queue at a fixed 5,000 msg/s for 5 s (open loop: latency counts
// from the intended send time) and reports confirm latency percentiles.
// Run it with -benchtime 1x.
func BenchmarkConfirmLatencyAt5k(b *testing.B) {
	url := benchURL(b)
	pub := benchChannel(b, url)
	q := durableBenchQueue(b, pub)
	_ = pub.Confirm(false)
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
	sub := benchChannel(b, url)
	msgs, _ := sub.Consume(q, "", true, false, false, false, nil)
	go func() {
		for range msgs {
		}
	}()
	const rate, dur = 5000, 5 * time.Second
	n := int(rate * dur.Seconds())
	intended := make([]time.Time, n)
	latencies := make([]time.Duration, 0, n)
	got := make(chan struct{})
	go func() {
		defer close(got)
		for len(latencies) < n {
			c := <-confirms
			latencies = append(latencies, time.Since(intended[c.DeliveryTag-1]))
		}
	}()
	body := make([]byte, 1024)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < n; i++ {
		intended[i] = start.Add(time.Duration(i) * time.Second / rate)
		if d := time.Until(intended[i]); d > 0 {
			time.Sleep(d)
		}
		if err := pub.Publish("", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	<-got
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 { return float64(latencies[int(p*float64(n-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(0.999), "p99.9-ms")
}
