package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The `tern ctl` tests run the built binary against a real `tern server`
// started with a configuration that defines an administrator (admin) and
// a monitoring-only user (watcher), and check both what ctl prints and
// the broker's state afterwards, through the HTTP API or amqp091-go.

const (
	ctlAdminPass   = "admin-secret"
	ctlWatcherPass = "watcher-secret"
)

const ctlConfig = `
[[users]]
name = "admin"
password = "` + ctlAdminPass + `"
tags = ["administrator"]
vhosts = ["*"]

[[users]]
name = "watcher"
password = "` + ctlWatcherPass + `"
tags = ["monitoring"]
`

type ctlServer struct {
	*binaryServer
	httpURL, mqttAddr string
}

// startCtlServer starts `tern server` with ctlConfig and finds its HTTP
// and MQTT addresses in the log lines startBinary has collected (httpListenLine:
// fulldisk_test.go).
func startCtlServer(t *testing.T) *ctlServer {
	t.Helper()
	s := startBinary(t, "--config", writeConfig(t, ctlConfig))
	cs := &ctlServer{binaryServer: s}
	deadline := time.After(30 * time.Second)
	for cs.httpURL == "" || cs.mqttAddr == "" {
		select {
		case line := <-s.logs:
			if m := httpListenLine.FindStringSubmatch(line); m != nil {
				cs.httpURL = "http://" + m[1]
			}
			if m := mqttListenLine.FindStringSubmatch(line); m != nil { // mqtt_crash_test.go
				cs.mqttAddr = m[1]
			}
		case <-deadline:
			t.Fatal("tern server did not log its HTTP and MQTT addresses")
		}
	}
	return cs
}

func (s *ctlServer) amqpURL(user, pass, vhost string) string {
	return "amqp://" + user + ":" + pass + "@" + s.amqpAddr + "/" + url.PathEscape(vhost)
}

// ctlResult is one run of `tern ctl`.
type ctlResult struct {
	code           int
	stdout, stderr string
}

// ctlAs runs `tern ctl --url … ARGS` as user (password in
// TERN_CTL_PASSWORD) with stdin.
func (s *ctlServer) ctlAs(t *testing.T, user, pass, stdin string, args ...string) ctlResult {
	t.Helper()
	return runCtlBinary(t, []string{"TERN_CTL_PASSWORD=" + pass}, stdin, append([]string{"ctl", "--url", s.httpURL, "--user", user}, args...)...)
}

// ctl runs `tern ctl` as the administrator.
func (s *ctlServer) ctl(t *testing.T, args ...string) ctlResult {
	t.Helper()
	return s.ctlAs(t, "admin", ctlAdminPass, "", args...)
}

// ctlIn is ctl with standard input.
func (s *ctlServer) ctlIn(t *testing.T, stdin string, args ...string) ctlResult {
	t.Helper()
	return s.ctlAs(t, "admin", ctlAdminPass, stdin, args...)
}

func runCtlBinary(t *testing.T, env []string, stdin string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("tern %v still running after 30s", args)
	}
	res := ctlResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return res
}

// ok fails the test unless the run exited 0.
func (r ctlResult) ok(t *testing.T) ctlResult {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

// exit fails the test unless the run exited code with a message on stderr.
func (r ctlResult) exit(t *testing.T, code int) ctlResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	if code != 0 && strings.TrimSpace(r.stderr) == "" {
		t.Fatalf("exit %d without a message on stderr", code)
	}
	return r
}

// rows parses a --json list.
func (r ctlResult) rows(t *testing.T) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("not a JSON list: %v\n%s", err, r.stdout)
	}
	return rows
}

// api GETs path as the administrator and decodes the JSON answer into v,
// returning the status.
func (s *ctlServer) api(t *testing.T, path string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.httpURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", ctlAdminPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// queueMessages is the queue's message count from the API (-1 when it
// does not exist).
func (s *ctlServer) queueMessages(t *testing.T, vhost, name string) int {
	t.Helper()
	var q struct {
		Messages int `json:"messages"`
	}
	if s.api(t, "/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(name), &q) == http.StatusNotFound {
		return -1
	}
	return q.Messages
}

// eventually polls cond (API state that a background sampler or an
// asynchronous close updates) for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within 10s", what)
}

// hasRow reports whether some row has every field of want.
func hasRow(rows []map[string]any, want map[string]any) bool {
	for _, r := range rows {
		match := true
		for k, v := range want {
			got, ok := r[k] // a --columns projection keeps "a.b" as a key
			if !ok {
				got, ok = field(r, k)
			}
			if !ok || cell(got) != cell(v) {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}

func runCtlBinaryWith(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ternBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := ctlResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return res
}
