package main

import (
	"fmt"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// idleResult is each node's idle CPU and RSS before and after declaring
// the queues.
type idleResult struct {
	queues                int
	declareTook           time.Duration
	rssBefore, rssAfter   []int64
	cpuBefore, cpuAfter   []float64 // CPU share of one core, per node, over the window
	window                time.Duration
	loadBefore, loadAfter string
}

// idleQuorumQueues measures the nodes idle over window, declares n quorum
// queues through the first URL, lets them settle, and measures again.
func idleQuorumQueues(b *broker, n int, window time.Duration) (idleResult, error) {
	res := idleResult{queues: n, window: window}
	var err error
	res.loadBefore = loadavg()
	if res.cpuBefore, err = idleCPU(b.pids(), window); err != nil {
		return res, err
	}
	for _, p := range b.pids() {
		r, _ := rssBytes(p)
		res.rssBefore = append(res.rssBefore, r)
	}
	conn, err := amqp.Dial(b.urls[0])
	if err != nil {
		return res, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return res, err
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := ch.QueueDeclare(fmt.Sprintf("idle-%d", i), true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
			return res, fmt.Errorf("declaring quorum queue %d: %w", i, err)
		}
	}
	res.declareTook = time.Since(start)
	time.Sleep(15 * time.Second) // elections, first heartbeats, groups going quiet
	res.loadAfter = loadavg()
	if res.cpuAfter, err = idleCPU(b.pids(), window); err != nil {
		return res, err
	}
	for _, p := range b.pids() {
		r, _ := rssBytes(p)
		res.rssAfter = append(res.rssAfter, r)
	}
	return res, nil
}

// deleteIdle deletes the queues idleQuorumQueues declared.
func deleteIdle(url string, n int) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for i := 0; i < n; i++ {
		_, _ = ch.QueueDelete(fmt.Sprintf("idle-%d", i), false, false, false)
	}
}

func idleCPU(pids []int, window time.Duration) ([]float64, error) {
	var before []float64
	for _, p := range pids {
		c, err := cpuSeconds(p)
		if err != nil {
			return nil, err
		}
		before = append(before, c)
	}
	time.Sleep(window)
	out := make([]float64, len(pids))
	for i, p := range pids {
		c, err := cpuSeconds(p)
		if err != nil {
			return nil, err
		}
		out[i] = (c - before[i]) / window.Seconds()
	}
	return out, nil
}

func (r idleResult) report(name string) string {
	var sb strings.Builder
	var growth int64
	for i := range r.rssAfter {
		growth += r.rssAfter[i] - r.rssBefore[i]
	}
	fmt.Fprintf(&sb, "%s: %d quorum queues declared in %v (load %s → %s)\n", name, r.queues, r.declareTook.Round(time.Millisecond), r.loadBefore, r.loadAfter)
	for i := range r.rssAfter {
		fmt.Fprintf(&sb, "  node %d: idle CPU %.1f%% → %.1f%% of a core over %v; RSS %.1f → %.1f MiB\n", i+1,
			100*r.cpuBefore[i], 100*r.cpuAfter[i], r.window, float64(r.rssBefore[i])/(1<<20), float64(r.rssAfter[i])/(1<<20))
	}
	fmt.Fprintf(&sb, "  RSS per queue, summed over the nodes: %.1f KiB (per node %.1f KiB)\n",
		float64(growth)/float64(r.queues)/1024, float64(growth)/float64(r.queues)/1024/float64(len(r.rssAfter)))
	return sb.String()
}
