package amqp_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// BenchmarkPublishConsume measures transient 1 KiB messages from one
// amqp091-go publisher through one queue to one autoack amqp091-go consumer
// over loopback. Allocations include the client library's.
//
// With TERN_BENCH_URL set it drives that broker instead of an in-process
// Tern, so the same workload measures a `tern server` binary or RabbitMQ:
//
//	TERN_BENCH_URL=amqp://guest:guest@127.0.0.1:5672/ go test ./internal/amqp -run X -bench PublishConsume
func BenchmarkPublishConsume(b *testing.B) {
	url := benchURL(b)
	pub := benchChannel(b, url)
	q := declareB(b, pub)
	sub := benchChannel(b, url)
	msgs, err := sub.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	payload := amqp.Publishing{Body: make([]byte, 1024)}
	done := make(chan struct{})
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	go func() {
		for i := 0; i < b.N; i++ {
			<-msgs
		}
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		if err := pub.Publish("", q, false, false, payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatal("consumer did not receive every message")
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func declareB(b *testing.B, ch *amqp.Channel) string {
	b.Helper()
	q, err := ch.QueueDeclare("", false, true, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	return q.Name
}

// BenchmarkServerPath drives the server with pre-encoded frames and a
// consumer that discards bytes, so the allocations reported are the
// server's own per message (publish, route, enqueue, deliver), and the
// client costs too little to hide the broker's speed. TERN_BENCH_URL
// points it at another broker, as for BenchmarkPublishConsume.
func BenchmarkServerPath(b *testing.B) { serverPath(b, benchURL(b)) }

// serverPath is BenchmarkServerPath against url.
func serverPath(b *testing.B, url string) {
	uri, err := amqp.ParseURI(url)
	if err != nil {
		b.Fatal(err)
	}
	addr := net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port))
	ch := benchChannel(b, url)
	q := declareB(b, ch)

	// Consumer: a raw connection with an autoack consumer that counts
	// deliveries by reading basic.deliver frames.
	cons := testkit.DialRawAddr(b, addr)
	cons.Handshake(0)
	cons.Send(1, &amqp091.BasicConsume{Queue: q, ConsumerTag: "bench", NoAck: true})
	if _, ok := cons.Expect().(*amqp091.BasicConsumeOk); !ok {
		b.Fatal("no consume-ok")
	}
	_ = cons.NC.SetDeadline(time.Time{})

	prod := testkit.DialRawAddr(b, addr)
	prod.Handshake(0)
	_ = prod.NC.SetDeadline(time.Time{})
	var frame []byte
	frame = amqp091.AppendMethodFrame(frame, 1, &amqp091.BasicPublish{RoutingKey: q})
	frame = amqp091.AppendHeaderFrame(frame, 1, amqp091.ClassBasic, 1024, []byte{0, 0})
	frame = amqp091.AppendBodyFrames(frame, 1, make([]byte, 1024), 131072)
	const batch = 64
	var block []byte
	for i := 0; i < batch; i++ {
		block = append(block, frame...)
	}

	done := make(chan struct{})
	b.ReportAllocs()
	b.SetBytes(1024)
	cpu0 := processCPU()
	b.ResetTimer()
	go func() {
		defer close(done)
		countDeliveries(cons.NC, b.N)
	}()
	w := bufio.NewWriterSize(prod.NC, 256<<10)
	for sent := 0; sent < b.N; {
		n := min(batch, b.N-sent)
		if _, err := w.Write(block[:n*len(frame)]); err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	_ = w.Flush()
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	// CPU time per message (the whole process: server, producer and
	// consumer), which a machine busy with other work inflates far less
	// than the wall-clock rate.
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/msg")
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// countDeliveries reads frames until n basic.deliver methods have arrived.
func countDeliveries(nc net.Conn, n int) {
	fr := amqp091.NewFrameReader(bufio.NewReaderSize(nc, 256<<10), 0)
	for got := 0; got < n; {
		f, err := fr.ReadFrame()
		if err == io.EOF || err != nil {
			return
		}
		if f.Type == amqp091.FrameMethod {
			if c, m := amqp091.MethodIDs(f.Payload); c == amqp091.ClassBasic && m == 60 {
				got++
			}
		}
	}
}
