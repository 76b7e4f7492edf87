package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rssOf reads a process's resident set size in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// metric reads one gauge from /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// queueMessages fills queue with n messages of size bytes (persistent if
// durable) from one connection and waits until the queue holds them all.
func queueMessages(t *testing.T, url, queue string, n, size int, durable bool) {
	t.Helper()
	c, ch := dialChannel(t, url)
	defer c.Close()
	if _, err := ch.QueueDeclare(queue, durable, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var mode uint8
	if durable {
		mode = amqp.Persistent
	}
	body := make([]byte, size)
	for i := 0; i < n; i++ {
		if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: body, DeliveryMode: mode}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		q, err := ch.QueueDeclarePassive(queue, durable, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q.Messages == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the queue never held all %d messages", n)
}

// TestQueuedMessageCostMatchesRSS (issue 10 item 5): the memory the alarm
// counts for queued messages is what they cost the process. 300,000
// transient 64-byte messages grow tern's resident set by ~130 MiB; the
// watermark used to count their 19 MiB of bodies only (7× less), so "40% of
// RAM" meant far more. Now the accounted memory must be within 40% of the
// RSS growth.
func TestQueuedMessageCostMatchesRSS(t *testing.T) {
	s := startLogged(t, t.TempDir())
	httpAddr := <-s.httpAddr
	before := rssOf(t, s.cmd.Process.Pid)
	const n, size = 300_000, 64
	queueMessages(t, s.url(), "m", n, size, false)
	grown := rssOf(t, s.cmd.Process.Pid) - before
	accounted := metric(t, httpAddr, "tern_queued_bytes")
	ratio := accounted / float64(grown)
	t.Logf("%d messages of %d bytes: RSS grew %.1f MiB (%.0f bytes per message), accounted %.1f MiB: ratio %.2f",
		n, size, float64(grown)/(1<<20), float64(grown)/n, accounted/(1<<20), ratio)
	if ratio < 0.6 || ratio > 1.4 {
		t.Fatalf("the memory alarm counts %.2f× what queued messages cost", ratio)
	}
}

// TestMeasureQueuedMessageCost is the measurement behind the figures in
// internal/broker/memory.go; it runs only when asked:
//
//	M_N=1000000 M_SIZE=64 [M_DURABLE=1] go test ./cmd/tern -run TestMeasureQueuedMessageCost -v
func TestMeasureQueuedMessageCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("M_N"))
	size, _ := strconv.Atoi(os.Getenv("M_SIZE"))
	if n == 0 {
		t.Skip("a measurement: set M_N and M_SIZE")
	}
	s := startLogged(t, t.TempDir())
	before := rssOf(t, s.cmd.Process.Pid)
	queueMessages(t, s.url(), "m", n, size, os.Getenv("M_DURABLE") != "")
	after := rssOf(t, s.cmd.Process.Pid)
	t.Logf("%d messages of %d bytes: RSS %d -> %d MiB, %.0f bytes per message, %.0f beyond the body", n, size, before>>20, after>>20,
		float64(after-before)/float64(n), float64(after-before)/float64(n)-float64(size))
}

// TestMemoryGoesBackToTheOSAfterABacklogDrains: after 300,000 queued
// messages (~130 MiB) are purged, tern's resident set falls back most of
// the way within a few seconds (Broker.ReleaseMemory), instead of staying
// at its peak while the runtime returns pages at its own pace.
func TestMemoryGoesBackToTheOSAfterABacklogDrains(t *testing.T) {
	s := startLogged(t, t.TempDir())
	pid := s.cmd.Process.Pid
	before := rssOf(t, pid)
	queueMessages(t, s.url(), "m", 300_000, 64, false)
	peak := rssOf(t, pid)
	c, ch := dialChannel(t, s.url())
	defer c.Close()
	if _, err := ch.QueuePurge("m", false); err != nil {
		t.Fatal(err)
	}
	limit := before + (peak-before)*3/10
	deadline := time.Now().Add(5 * time.Second)
	rss := rssOf(t, pid)
	for rss > limit && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		rss = rssOf(t, pid)
	}
	t.Logf("RSS %d MiB before, %d MiB with the backlog, %d MiB after purging it", before>>20, peak>>20, rss>>20)
	if rss > limit {
		t.Fatalf("RSS still %d MiB 5 s after the backlog drained (peak %d MiB, started at %d MiB)", rss>>20, peak>>20, before>>20)
	}
	// The server checks once a second: the runtime's own scavenger can
	// bring the resident set under the limit before that check has run,
	// so the release's log line is waited for, not expected at once.
	released := time.Now().Add(5 * time.Second)
	for s.count("returned memory to the OS") == 0 && time.Now().Before(released) {
		time.Sleep(100 * time.Millisecond)
	}
	if s.count("returned memory to the OS") != 1 {
		t.Errorf("release logged %d times, want once", s.count("returned memory to the OS"))
	}
}
