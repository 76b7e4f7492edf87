package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// benchResult is the part of `tern bench --json` this program reports.
type benchResult struct {
	Sent, Confirmed, Nacked, Received, Lost, Duplicates, Reordered, Redelivered int64
	ConfirmedRate                                                               float64                          `json:"confirmed_msg_per_s"`
	ReceivedRate                                                                float64                          `json:"received_msg_per_s"`
	Latency                                                                     struct{ P50, P99 time.Duration } `json:"latency"`
	Confirm                                                                     struct{ P50, P99 time.Duration } `json:"confirm_latency"`
}

// throughputRow is one `tern bench` run with what the brokers spent on it.
type throughputRow struct {
	label, cmd string
	res        benchResult
	cpu        float64 // broker CPU seconds, all its processes
	wall       float64 // seconds the bench process ran
	fsyncs     float64 // WAL (or store) fsyncs, summed over the nodes
	walEntries float64 // Raft entries those fsyncs covered (cluster only)
	// leaderChanges are the leader changes the nodes saw (summed; each
	// node sees the new queue's first leader once); elections the
	// campaigns they started (cluster only).
	leaderChanges, elections float64
	nodes                    int
	load                     string
	err                      string
}

// benchArgs are the settings of every throughput run: the persistent
// scenario (1 KiB persistent messages, confirms 1,000 in flight, prefetch
// 1,000, manual acks, durable queue).
func benchArgs(d time.Duration) []string {
	return []string{"bench", "--scenario", "persistent", "--size", "1024", "--duration", d.String(), "--drain", "10s", "--json"}
}

// runThroughput runs tern bench against b with the given queue type and
// samples b's processes and metrics around it.
func runThroughput(bin, label string, b *broker, urls []string, queueType string, d time.Duration) throughputRow {
	args := append(benchArgs(d), "--queue-type", queueType, "--url", strings.Join(urls, ","))
	row := throughputRow{label: label, nodes: len(b.pids()), load: loadavg()}
	row.cmd = "tern " + strings.Join(redactArgs(args), " ")
	cpu0, err := sumCPU(b.pids())
	if err != nil {
		row.err = err.Error()
		return row
	}
	m0 := sumMetrics(b.https)
	start := time.Now()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	row.wall = time.Since(start).Seconds()
	cpu1, err := sumCPU(b.pids())
	if err != nil {
		row.err = err.Error()
		return row
	}
	m1 := sumMetrics(b.https)
	row.cpu = cpu1 - cpu0
	if queueType == "quorum" {
		row.fsyncs = m1["tern_raft_wal_fsync_seconds_count"] - m0["tern_raft_wal_fsync_seconds_count"]
		row.walEntries = m1["tern_raft_wal_batch_entries_sum"] - m0["tern_raft_wal_batch_entries_sum"]
		row.leaderChanges = m1["tern_raft_leader_changes_total"] - m0["tern_raft_leader_changes_total"]
		row.elections = m1["tern_raft_elections_total"] - m0["tern_raft_elections_total"]
	} else {
		row.fsyncs = m1["tern_store_fsyncs_total"] - m0["tern_store_fsyncs_total"]
	}
	if err := json.Unmarshal(stdout.Bytes(), &row.res); err != nil {
		row.err = fmt.Sprintf("%v: %v %s", runErr, err, stderr.String())
	} else if runErr != nil {
		row.err = fmt.Sprintf("%v %s", runErr, strings.TrimSpace(stderr.String()))
	}
	return row
}

// sumMetrics adds up the nodes' metrics by name.
func sumMetrics(https []string) map[string]float64 {
	out := map[string]float64{}
	for _, h := range https {
		m, err := metrics(h)
		if err != nil {
			continue
		}
		for k, v := range m {
			out[k] += v
		}
	}
	return out
}

func redactArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], "guest:guest@", "guest:xxxxx@")
	}
	return out
}

func (r throughputRow) String() string {
	if r.err != "" && r.res.Confirmed == 0 {
		return fmt.Sprintf("| %s | failed: %s | | | | | |", r.label, r.err)
	}
	perMsg := r.cpu / float64(max(r.res.Confirmed, 1)) * 1e6
	fs := "—"
	if r.fsyncs > 0 {
		perNode := r.fsyncs / float64(r.nodes)
		fs = fmt.Sprintf("%.0f/s per node, %.1f msg/fsync", perNode/r.wall, float64(r.res.Confirmed)/perNode)
		if r.walEntries > 0 {
			fs += fmt.Sprintf(" (%.1f Raft entries)", r.walEntries/r.fsyncs)
		}
	}
	note := ""
	if r.err != "" {
		note = " ⚠ " + r.err
	}
	if extra := r.leaderChanges - float64(r.nodes); extra > 0 {
		// Beyond each node learning the new queue's first leader: a
		// leader change with no fault injected (or another group's).
		note += fmt.Sprintf(" ⚠ %.0f leader changes seen after the first (elections %.0f)", extra, r.elections)
	}
	if r.res.Duplicates > 0 || r.res.Lost > 0 || r.res.Nacked > 0 {
		note += fmt.Sprintf(" lost %d dup %d (redelivered %d) nacked %d", r.res.Lost, r.res.Duplicates, r.res.Redelivered, r.res.Nacked)
	}
	return fmt.Sprintf("| %s | %.0f / %.0f | %.2f / %.2f ms | %.2f / %.2f ms | %.0f µs (%d proc) | %s | %s |%s",
		r.label, r.res.ConfirmedRate, r.res.ReceivedRate,
		ms(r.res.Confirm.P50), ms(r.res.Confirm.P99), ms(r.res.Latency.P50), ms(r.res.Latency.P99),
		perMsg, r.nodes, fs, r.load, note)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
