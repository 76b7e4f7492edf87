package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// The broker limited to few file descriptors: a burst of connections past
// the limit makes accept fail with EMFILE; once clients close, the listener
// must accept again (before, the accept loop returned on the first EMFILE
// and the AMQP listener was gone for good). The episode is logged once, not
// once per retry, and counted in /metrics.

// fdLimit is the process's RLIMIT_NOFILE, soft and hard, so that the Go
// runtime cannot raise it at start-up: room for the listeners, the store and
// a few dozen connections.
const fdLimit = 64

type dialResult struct {
	c   *amqp.Connection
	err error
}

func dialAsync(url string) chan dialResult {
	res := make(chan dialResult, 1)
	go func() {
		c, err := amqp.Dial(url)
		res <- dialResult{c, err}
	}()
	return res
}

var recoveredLine = regexp.MustCompile(`accepting connections again.*failed_accepts=(\d+)`)

func TestListenerAcceptsAgainAfterRunningOutOfFileDescriptors(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, fdLimit),
		ternBin, "server", "--data-dir", t.TempDir(), "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--mqtt-addr", "", "--mqtt-ws-addr", "")
	s := startLoggedCmd(t, cmd)
	var httpAddr string
	select {
	case httpAddr = <-s.httpAddr:
	case <-time.After(10 * time.Second):
		t.Fatal("no HTTP address logged")
	}
	url := s.url()
	const emfile = "too many open files"

	// Open connections one at a time until the server reports EMFILE; the
	// dial in flight then waits in the kernel's backlog.
	var open []*amqp.Connection
	defer func() {
		for _, c := range open {
			_ = c.Close()
		}
	}()
	var waiting []chan dialResult
	deadline := time.After(30 * time.Second)
	for len(waiting) == 0 {
		if len(open) > 4*fdLimit {
			t.Fatalf("%d connections open under a limit of %d descriptors and no EMFILE logged", len(open), fdLimit)
		}
		res := dialAsync(url)
		tick := time.NewTicker(10 * time.Millisecond)
	dial:
		for {
			select {
			case r := <-res:
				if r.err != nil {
					t.Fatalf("connection %d: %v", len(open)+1, r.err)
				}
				open = append(open, r.c)
				break dial
			case <-tick.C:
				if s.count(emfile) > 0 {
					waiting = append(waiting, res)
					break dial
				}
			case <-s.done:
				t.Fatalf("tern exited: %v\n%s", <-s.exited, strings.Join(s.linesWith(""), "\n"))
			case <-deadline:
				t.Fatalf("no EMFILE after %d connections", len(open))
			}
		}
		tick.Stop()
	}
	// A few more clients past the limit, also left in the backlog.
	for range 3 {
		waiting = append(waiting, dialAsync(url))
	}
	t.Logf("EMFILE after %d connections", len(open))

	// Hold the exhaustion for a while: nothing is observable from outside
	// (that is the point: the retries must stay quiet), so this is a fixed
	// wait. 600ms is enough for the backoff (5ms doubling) to retry 6 times.
	time.Sleep(600 * time.Millisecond)
	for _, c := range open {
		_ = c.Close()
	}
	open = nil

	// Every client that waited in the backlog is accepted and completes its
	// handshake, and a new client connects and works.
	for i, res := range waiting {
		select {
		case r := <-res:
			if r.err != nil {
				t.Fatalf("client %d waiting in the backlog: %v", i, r.err)
			}
			open = append(open, r.c)
		case <-time.After(20 * time.Second):
			t.Fatalf("client %d waiting in the backlog was never accepted:\n%s", i, strings.Join(s.linesWith(""), "\n"))
		}
	}
	c, ch := dialChannel(t, url)
	defer c.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Body: []byte("after EMFILE")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the message published after EMFILE", func() bool {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		return ok && string(m.Body) == "after EMFILE"
	})

	// One line for the episode, one for the recovery, however many retries.
	testkit.Eventually(t, 5*time.Second, "the recovery log line", func() bool { return s.count("accepting connections again") == 1 })
	if n := s.count(emfile); n != 1 {
		t.Errorf("EMFILE logged %d times, want once per episode:\n%s", n, strings.Join(s.linesWith(emfile), "\n"))
	}
	m := recoveredLine.FindStringSubmatch(strings.Join(s.linesWith("accepting connections again"), "\n"))
	if m == nil {
		t.Fatalf("recovery line without failed_accepts: %q", s.linesWith("accepting connections again"))
	}
	t.Log(m[0])
	if n, _ := strconv.Atoi(m[1]); n < 3 {
		t.Errorf("failed_accepts=%d: the hold should have seen several retries", n)
	}
	if v := metric(t, httpAddr, `tern_listener_fd_exhausted_total{protocol="amqp"}`); v != 1 {
		t.Errorf("tern_listener_fd_exhausted_total{protocol=\"amqp\"} = %v, want 1", v)
	}
}
