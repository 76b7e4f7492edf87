package main

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Crash tests: the real binary, kill -9, restart on the same data, and
// every confirmed message must come back exactly once, in order, intact.

// crashBody is index | CRC of the index | padding to 512 bytes.
func crashBody(i uint32) []byte {
	b := make([]byte, 512)
	binary.BigEndian.PutUint32(b, i)
	binary.BigEndian.PutUint32(b[4:], crc32.ChecksumIEEE(b[:4]))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i + uint32(j))
	}
	return b
}

func checkBody(t *testing.T, b []byte) uint32 {
	t.Helper()
	if len(b) != 512 {
		t.Fatalf("corrupt message: %d bytes", len(b))
	}
	i := binary.BigEndian.Uint32(b)
	if !bytes.Equal(b, crashBody(i)) {
		t.Fatalf("corrupt message claiming index %d", i)
	}
	return i
}

func dialChannel(t *testing.T, url string) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	c, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return c, ch
}

func kill9(t *testing.T, s *binaryServer) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("tern did not die")
	}
}

// drainQueue consumes everything in queue and returns the indexes.
func drainQueue(t *testing.T, url, queue string) []uint32 {
	t.Helper()
	c, ch := dialChannel(t, url)
	defer c.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for len(got) < q.Messages {
		select {
		case m := <-d:
			got = append(got, checkBody(t, m.Body))
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d messages delivered", len(got), q.Messages)
		}
	}
	return got
}

func TestKill9RightAfterTheLastConfirm(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	if _, err := ch.QueueDeclare("crash", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_ = ch.Confirm(false)
	const n = 5000
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := uint32(0); i < n; i++ {
		if err := ch.Publish("", "crash", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if cf := <-confirms; !cf.Ack {
			t.Fatalf("nack %d", cf.DeliveryTag)
		}
	}
	kill9(t, s)
	_ = c.Close()

	s = startBinaryOn(t, dir)
	got := drainQueue(t, s.url(), "crash")
	if len(got) != n {
		t.Fatalf("%d of %d confirmed messages after kill -9", len(got), n)
	}
	for i, v := range got {
		if v != uint32(i) {
			t.Fatalf("position %d holds message %d", i, v)
		}
	}
}

func TestKill9AtRandomMomentsLosesNoConfirmedMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := 0; round < 5; round++ {
		dir := t.TempDir()
		s := startBinaryOn(t, dir)
		c, ch := dialChannel(t, s.url())
		if _, err := ch.QueueDeclare("crash", true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		_ = ch.Confirm(false)
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1<<16))
		var mu sync.Mutex
		confirmed := map[uint32]bool{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for cf := range confirms {
				if cf.Ack {
					mu.Lock()
					confirmed[uint32(cf.DeliveryTag-1)] = true
					mu.Unlock()
				}
			}
		}()
		go func() {
			for i := uint32(0); i < 1<<16; i++ {
				if ch.Publish("", "crash", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: crashBody(i)}) != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		kill9(t, s)
		_ = c.Close()
		<-done

		s = startBinaryOn(t, dir)
		got := drainQueue(t, s.url(), "crash")
		seen := map[uint32]bool{}
		for i, v := range got {
			if seen[v] {
				t.Fatalf("round %d: message %d delivered twice", round, v)
			}
			seen[v] = true
			if i > 0 && v <= got[i-1] {
				t.Fatalf("round %d: message %d after %d", round, v, got[i-1])
			}
		}
		mu.Lock()
		for v := range confirmed {
			if !seen[v] {
				t.Fatalf("round %d: confirmed message %d lost (%d confirmed, %d recovered)", round, v, len(confirmed), len(got))
			}
		}
		t.Logf("round %d: %d confirmed before kill -9, %d recovered", round, len(confirmed), len(got))
		mu.Unlock()
		kill9(t, s)
	}
}

func TestStreamSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	if _, err := ch.QueueDeclare("audit", true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
		t.Fatal(err)
	}
	_ = ch.Confirm(false)
	const n = 3000
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	for i := uint32(0); i < n; i++ {
		if err := ch.Publish("", "audit", false, false, amqp.Publishing{Body: crashBody(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		if cf := <-confirms; !cf.Ack {
			t.Fatal("nack")
		}
	}
	kill9(t, s)
	_ = c.Close()

	s = startBinaryOn(t, dir)
	c, ch = dialChannel(t, s.url())
	defer c.Close()
	_ = ch.Qos(500, 0, false)
	d, err := ch.Consume("audit", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < n; i++ {
		select {
		case m := <-d:
			if v := checkBody(t, m.Body); v != i {
				t.Fatalf("offset %d holds message %d", i, v)
			}
			_ = m.Ack(false)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d confirmed stream messages after kill -9", i, n)
		}
	}
}
