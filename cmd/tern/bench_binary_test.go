package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestBenchRefusesAPlotFormatBeforeRunning(t *testing.T) {
	t.Parallel()
	s := startBinary(t)
	start := time.Now()
	code, out := runTern(t, "", "bench", "--url", s.url(), "--duration", "3s", "--rate", "100", "--quiet",
		"--plot", filepath.Join(t.TempDir(), "run.pdf"))
	if code != 2 || !strings.Contains(out, "use .svg, .html or .png") || strings.Contains(out, "sent") {
		t.Fatalf("--plot run.pdf: exit %d, %q; want exit 2 before any run", code, out)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("--plot run.pdf refused only after %v: the run went ahead", took)
	}
}

func TestBenchJSONNeverPrintsThePassword(t *testing.T) {
	t.Parallel()
	s := startBinary(t)
	plot := filepath.Join(t.TempDir(), "run.html")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, "bench", "--url", s.url(), "--duration", "1s", "--rate", "200", "--drain", "2s",
		"--json", "--plot", plot)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tern bench: %v\n%s", err, stderr.String())
	}
	var res struct {
		Config struct {
			URL string `json:"URL"`
		} `json:"config"`
		Sent int64 `json:"sent"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if res.Sent == 0 || res.Config.URL != "amqp://guest:xxxxx@"+s.amqpAddr+"/" {
		t.Errorf("sent %d, url %q", res.Sent, res.Config.URL)
	}
	html, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "plot": string(html)} {
		if strings.Contains(text, "guest:guest") {
			t.Errorf("%s prints the password: %s", what, text)
		}
	}
}

// TestBenchQuorumAcrossThreeNodes: `tern bench --queue-type quorum` with
// the three nodes' URLs declares a quorum queue (a Raft group on every
// node), publishes through n1 and consumes through n2, and every
// confirmed message arrives, in order. A duplicate is tolerated only when
// the broker marked it redelivered (AMQP's at-least-once: the queue's
// leader can return a consumer node's unacked messages when it thinks that
// node is gone, see the log line "returning the messages of consumers").
func TestBenchQuorumAcrossThreeNodes(t *testing.T) {
	nodes := startTestCluster(t, 3, 0)
	urls := nodes[0].url() + "," + nodes[1].url() + "," + nodes[2].url()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, "bench", "--queue-type", "quorum", "--url", urls, "--confirm", "100",
		"--duration", "1s", "--rate", "300", "--drain", "5s", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res struct {
		Config struct {
			URL       string `json:"URL"`
			QueueType string `json:"QueueType"`
			Persist   bool   `json:"Persistent"`
		} `json:"config"`
		Sent, Confirmed, Nacked, Received, Lost, Duplicates, Reordered, Redelivered int64
	}
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		t.Fatalf("tern bench --queue-type quorum: %v, output %v\n%s\n%s", err, jerr, stdout.String(), stderr.String())
	}
	if res.Config.QueueType != "quorum" || !res.Config.Persist || strings.Count(res.Config.URL, "guest:xxxxx@") != 3 {
		t.Errorf("config %+v", res.Config)
	}
	if res.Sent == 0 || res.Confirmed != res.Sent || res.Nacked != 0 || res.Lost != 0 || res.Reordered != 0 {
		t.Fatalf("sent %d confirmed %d nacked %d lost %d reordered %d\n%s", res.Sent, res.Confirmed, res.Nacked, res.Lost, res.Reordered, stderr.String())
	}
	if res.Duplicates > res.Redelivered {
		t.Fatalf("%d duplicates, only %d deliveries marked redelivered", res.Duplicates, res.Redelivered)
	}
	if res.Duplicates > 0 {
		t.Logf("%d duplicates, marked redelivered (exit %v)", res.Duplicates, err)
	} else if err != nil {
		t.Fatalf("tern bench: %v\n%s", err, stderr.String())
	}
	// The queue was a quorum queue: its entries were committed through Raft.
	m, err := httpGet("http://" + nodes[2].httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^tern_raft_commit_latency_seconds_count [1-9]`).Match(m) {
		t.Errorf("n3 committed no Raft entries:\n%s", m)
	}
}
