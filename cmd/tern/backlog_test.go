package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rssMiB reads a process's resident set size.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestBacklogOfOneMillionStaysOnDisk publishes 1M persistent 1 KiB
// messages (1 GiB) into a durable queue, checks the broker's memory stays
// bounded while they sit on disk, across a restart, and while they drain.
func TestBacklogOfOneMillionStaysOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1 GiB")
	}
	const n = 1_000_000
	const rssLimit = 400 // MiB
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	c, ch := dialChannel(t, s.url())
	if _, err := ch.QueueDeclare("backlog", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	_ = ch.Confirm(false)
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2000))
	body := make([]byte, 1024)
	start := time.Now()
	inFlight := 0
	for i := 0; i < n; i++ {
		copy(body, fmt.Sprintf("%010d", i))
		if err := ch.Publish("", "backlog", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
			t.Fatal(err)
		}
		inFlight++
		for inFlight >= 1000 { // a window of 1,000 unconfirmed publishes
			if cf := <-confirms; !cf.Ack {
				t.Fatal("nack")
			}
			inFlight--
		}
	}
	for ; inFlight > 0; inFlight-- {
		<-confirms
	}
	pubTime := time.Since(start)
	rssLoaded := rssMiB(t, s.cmd.Process.Pid)
	_ = c.Close()
	t.Logf("published %d persistent 1 KiB messages with confirms in %v (%.0f msg/s); RSS %.0f MiB",
		n, pubTime.Round(time.Millisecond), n/pubTime.Seconds(), rssLoaded)
	if rssLoaded > rssLimit {
		t.Errorf("RSS %.0f MiB with the backlog on disk, limit %d", rssLoaded, rssLimit)
	}

	_ = s.cmd.Process.Signal(os.Interrupt)
	<-s.exited
	start = time.Now()
	s = startBinaryOn(t, dir)
	restart := time.Since(start)
	rssRestarted := rssMiB(t, s.cmd.Process.Pid)
	t.Logf("restart with the backlog: ready in %v; RSS %.0f MiB", restart.Round(time.Millisecond), rssRestarted)
	if rssRestarted > rssLimit {
		t.Errorf("RSS %.0f MiB after restart, limit %d", rssRestarted, rssLimit)
	}

	c, ch = dialChannel(t, s.url())
	defer c.Close()
	_ = ch.Qos(1000, 0, false)
	d, err := ch.Consume("backlog", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	peak := 0.0
	for i := 0; i < n; i++ {
		select {
		case m := <-d:
			if want := fmt.Sprintf("%010d", i); string(m.Body[:10]) != want {
				t.Fatalf("message %d is %q", i, m.Body[:10])
			}
			if i%100 == 99 {
				_ = m.Ack(true)
			}
			if i%100_000 == 0 {
				peak = max(peak, rssMiB(t, s.cmd.Process.Pid))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stalled after %d messages", i)
		}
	}
	t.Logf("consumed %d in %v (%.0f msg/s); peak RSS while draining %.0f MiB", n, time.Since(start).Round(time.Millisecond),
		n/time.Since(start).Seconds(), peak)
	if peak > rssLimit {
		t.Errorf("RSS %.0f MiB while draining, limit %d", peak, rssLimit)
	}
}
