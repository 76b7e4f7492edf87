package mgmt_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// BenchmarkListQueuesUnderLoad measures GET /api/queues on a broker with
// 10,000 queues and 1,000 connections while a publisher runs at a fixed
// rate: the request's latency, the broker's CPU and the publisher's
// throughput with and without the API being polled. It runs against a
// separate broker process (docs/performance.md):
//
//	go build -o /tmp/tern ./cmd/tern
//	/tmp/tern server --data-dir /tmp/tapi --log-level warn &
//	TERN_BENCH_URL=amqp://guest:guest@127.0.0.1:5672/ TERN_BENCH_HTTP=http://127.0.0.1:15672 \
//	TERN_BENCH_PID=$! go test ./internal/mgmt -run X -bench ListQueuesUnderLoad -benchtime 1x
//
// TERN_BENCH_PHASES (a regular expression over the phases' names) keeps
// the publisher-alone phase and the matching ones; TERN_BENCH_ROUNDS and
// TERN_BENCH_PHASE_S set how many rounds of how long.
func BenchmarkListQueuesUnderLoad(b *testing.B) {
	url, api, pid := os.Getenv("TERN_BENCH_URL"), os.Getenv("TERN_BENCH_HTTP"), os.Getenv("TERN_BENCH_PID")
	if url == "" || api == "" || pid == "" {
		b.Skip("set TERN_BENCH_URL, TERN_BENCH_HTTP and TERN_BENCH_PID (a broker started apart)")
	}
	queues, conns := envInt("TERN_BENCH_QUEUES", 10_000), envInt("TERN_BENCH_CONNS", 1_000)
	rate := envInt("TERN_BENCH_RATE", 50_000)
	phase := time.Duration(envInt("TERN_BENCH_PHASE_S", 10)) * time.Second

	setup, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer setup.Close()
	ch, err := setup.Channel()
	if err != nil {
		b.Fatal(err)
	}
	for i := range queues {
		if _, err := ch.QueueDeclare(fmt.Sprintf("bench.q%05d", i), false, false, false, false, nil); err != nil {
			b.Fatal(err)
		}
	}
	var idle []*amqp.Connection
	defer func() {
		for _, c := range idle {
			_ = c.Close()
		}
	}()
	for range conns {
		c, err := amqp.Dial(url)
		if err != nil {
			b.Fatalf("connection %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}

	// The publisher sends to one of the queues, drained by a consumer, at
	// a fixed rate in 1 ms batches.
	if _, err := ch.QueueDeclare("bench.hot", false, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	cc, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	cch, _ := cc.Channel()
	msgs, err := cch.Consume("bench.hot", "", true, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for range msgs {
		}
	}()
	pc, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	pch, _ := pc.Channel()
	var published atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		body := make([]byte, 100)
		start := time.Now()
		var sent uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			due := uint64(time.Since(start).Seconds() * float64(rate))
			for sent < due {
				if err := pch.Publish("", "bench.hot", false, false, amqp.Publishing{Body: body}); err != nil {
					return
				}
				sent++
				published.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()

	client := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (time.Duration, int) {
		req, _ := http.NewRequest("GET", api+path, nil)
		req.SetBasicAuth("guest", "guest")
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return time.Since(t0), int(n)
	}
	const full, page = "/api/queues", "/api/queues?page=1&page_size=100&sort=name&columns=name,vhost,type,state,consumers,messages_ready,messages_unacknowledged,messages,message_stats.publish_details.rate"
	get(full) // warm up: connection and first sample

	// Phases are interleaved over several rounds so that a noisy machine's
	// drift spreads over all of them; each phase's figures are the sums
	// over its rounds.
	type result struct {
		name, path   string
		every        time.Duration // -1: no requests
		published    uint64
		cpu, elapsed float64
		lat          []time.Duration
		size         int
	}
	results := []*result{{name: "publisher alone", every: -1},
		{name: "GET /api/queues once a second", path: full, every: time.Second},
		{name: "a page of 100 once a second", path: page, every: time.Second},
		{name: "GET /api/queues back to back", path: full, every: 0},
		{name: "a page of 100 back to back", path: page, every: 0}}
	if only := os.Getenv("TERN_BENCH_PHASES"); only != "" { // e.g. "alone|page of 100 once"
		re := regexp.MustCompile(only)
		results = slices.DeleteFunc(results, func(r *result) bool { return r.every >= 0 && !re.MatchString(r.name) })
	}
	run := func(r *result) {
		cpu0, p0, t0 := cpuSeconds(b, pid), published.Load(), time.Now()
		deadline := t0.Add(phase)
		for r.every >= 0 && time.Now().Before(deadline) {
			start := time.Now()
			d, n := get(r.path)
			r.lat, r.size = append(r.lat, d), n
			if wait := r.every - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
		}
		if r.every < 0 {
			time.Sleep(phase)
		}
		r.elapsed += time.Since(t0).Seconds()
		r.published += published.Load() - p0
		r.cpu += cpuSeconds(b, pid) - cpu0
	}
	time.Sleep(2 * time.Second) // the publisher reaches its rate
	rounds := envInt("TERN_BENCH_ROUNDS", 3)
	for range rounds {
		for _, r := range results {
			run(r)
		}
	}
	base := float64(results[0].published) / results[0].elapsed
	b.Logf("%d queues, %d idle connections, publisher target %d msg/s, %d rounds of %s per phase", queues, conns, rate, rounds, phase)
	for _, r := range results {
		mps := float64(r.published) / r.elapsed
		line := fmt.Sprintf("%-30s publisher %6.0f msg/s (%+5.1f%%)  broker CPU %.2f cores", r.name, mps, 100*(mps-base)/base, r.cpu/r.elapsed)
		if len(r.lat) > 0 {
			slices.Sort(r.lat)
			line += fmt.Sprintf("  GET p50 %v p99 %v max %v (%d requests, %d KiB)", r.lat[len(r.lat)/2].Round(time.Millisecond),
				r.lat[len(r.lat)*99/100].Round(time.Millisecond), r.lat[len(r.lat)-1].Round(time.Millisecond), len(r.lat), r.size>>10)
		}
		b.Log(line)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuSeconds is the process's user and system CPU time (Linux).
func cpuSeconds(b *testing.B, pid string) float64 {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ 100)
}
