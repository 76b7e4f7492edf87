package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
