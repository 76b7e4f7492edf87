package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// These tests run the real `tern` binary, as a user would.

var ternBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tern-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ternBin = filepath.Join(dir, "tern")
	if out, err := exec.Command("go", "build", "-o", ternBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building tern: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type binaryServer struct {
	cmd      *exec.Cmd
	amqpAddr string
	logs     chan string
	exited   chan error
}

var listenLine = regexp.MustCompile(`msg="AMQP 0-9-1 listening" addr=(\S+)`)

// startBinary runs `tern server` on kernel-chosen loopback ports and waits
// until it logs its AMQP address.
func startBinary(t *testing.T, extra ...string) *binaryServer {
	t.Helper()
	return startBinaryOn(t, t.TempDir(), extra...)
}

// startBinaryOn is startBinary on a given data directory.
func startBinaryOn(t *testing.T, dataDir string, extra ...string) *binaryServer {
	t.Helper()
	args := append([]string{"server", "--data-dir", dataDir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--mqtt-addr", "127.0.0.1:0", "--mqtt-ws-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(ternBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &binaryServer{cmd: cmd, logs: make(chan string, 1024), exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := listenLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			select {
			case s.logs <- line:
			default:
			}
		}
		s.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	select {
	case s.amqpAddr = <-addr:
	case <-time.After(60 * time.Second):
		// Generous: a restart over a backlog of a million messages on a
		// machine busy with other packages' tests takes more than 10 s.
		t.Fatal("tern server did not report its AMQP address within 60s")
	}
	return s
}

func (s *binaryServer) url() string { return "amqp://guest:guest@" + s.amqpAddr + "/" }

func TestPikaRunsTheSixRabbitMQTutorials(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-pika is required in CI: %v", err)
		}
		t.Skip("python3-pika not installed (apt-get install python3-pika)")
	}
	s := startBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("..", "..", "test", "pika", "tutorials.py"))
	cmd.Env = append(os.Environ(), "AMQP_URL="+s.url())
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("pika tutorials: %v", err)
	}
	if !strings.Contains(string(out), "6 passed, 0 failed") {
		t.Fatal("not every tutorial ran")
	}
}

func TestSIGTERMClosesClientsAndExitsCleanly(t *testing.T) {
	s := startBinary(t)
	c, err := amqp.Dial(s.url())
	if err != nil {
		t.Fatal(err)
	}
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Fatalf("client saw %v, want 320 CONNECTION_FORCED", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client not closed on SIGTERM")
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Fatalf("tern exited with %v after SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tern did not exit after SIGTERM")
	}
}

func TestUsageAndVersion(t *testing.T) {
	out, err := exec.Command(ternBin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "tern ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if err := exec.Command(ternBin, "bogus").Run(); err == nil {
		t.Fatal("unknown command accepted")
	}
	out, err = exec.Command(ternBin, "bench", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("bench --help: %v", err)
	}
	for _, flag := range []string{"-url", "-scenario", "-producers", "-consumers", "-queues", "-exchange", "-size", "-duration",
		"-count", "-rate", "-persistent", "-confirm", "-prefetch", "-autoack", "-multi-ack-every", "-idle-connections",
		"-server-pid", "-drain", "-json", "-plot", "-quiet", "transient", "persistent", "fanout", "many", "fixed-rate", "idle-connections"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("bench --help lacks %s", flag)
		}
	}
	out, _ = exec.Command(ternBin, "server", "--help").CombinedOutput()
	for _, flag := range []string{"-data-dir", "-amqp-addr", "-http-addr", "-mqtt-addr", "-config"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("server --help lacks %s", flag)
		}
	}
}
