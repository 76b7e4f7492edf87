package server_test

import (
	"crypto/tls"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// Benchmarks, not tests: TLS against plain TCP in the same run
// (docs/performance.md). go test ./internal/server -run X -bench TLS

// BenchmarkTLSHandshake opens and closes one AMQP connection per
// iteration, over TLS 1.3 (ECDSA P-256) and over plain TCP.
func BenchmarkTLSHandshake(b *testing.B) {
	pki := testkit.NewPKI(b)
	s := testkit.Start(b, pki.Option("none"))
	for _, tc := range []struct {
		name string
		dial func() (*amqp.Connection, error)
	}{
		{"plain", func() (*amqp.Connection, error) { return amqp.Dial(s.URL) }},
		{"tls", func() (*amqp.Connection, error) {
			return amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
		}},
		{"raw-tls-only", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if tc.dial == nil { // the TLS handshake alone, no AMQP
					c, err := tls.Dial("tcp", s.AMQPSAddr().String(), pki.ClientConfig())
					if err != nil {
						b.Fatal(err)
					}
					c.Close()
					continue
				}
				c, err := tc.dial()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conn/s")
		})
	}
}

// BenchmarkTLSThroughput publishes 1 KiB transient messages to a queue an
// autoack consumer on the same connection drains, over TLS and plain TCP.
func BenchmarkTLSThroughput(b *testing.B) {
	pki := testkit.NewPKI(b)
	s := testkit.Start(b, pki.Option("none"))
	body := make([]byte, 1024)
	for _, tc := range []struct {
		name string
		dial func() (*amqp.Connection, error)
	}{
		{"plain", func() (*amqp.Connection, error) { return amqp.Dial(s.URL) }},
		{"tls", func() (*amqp.Connection, error) {
			return amqp.DialTLS(amqpsURL(s, "guest:guest@"), pki.ClientConfig())
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := tc.dial()
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			ch, err := c.Channel()
			if err != nil {
				b.Fatal(err)
			}
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			msgs, err := ch.Consume(q.Name, "", true, true, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			done := make(chan int)
			n := b.N
			go func() {
				got := 0
				defer func() { done <- got }()
				for range n {
					select {
					case <-msgs:
						got++
					case <-time.After(30 * time.Second):
						return
					}
				}
			}()
			b.ResetTimer()
			for range n {
				if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: body}); err != nil {
					b.Fatal(err)
				}
			}
			if got := <-done; got != n {
				b.Fatalf("received %d of %d", got, n)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
