package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// A harness for clusters of real `tern` processes on loopback: each node
// has its own data directory and ports, and the test reads its logs and
// its /api/cluster.

const testClusterSecret = "a-test-cluster-secret-0123456789"

type ternNode struct {
	name        string
	clusterAddr string
	dataDir     string
	args        []string // the full `tern server …` argument list

	mu       sync.Mutex
	lines    []string
	changed  chan struct{} // closed and replaced when a line arrives
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error // the process's exit, once exited is closed
	amqpAddr string
	httpAddr string
}

// writeSecret writes a cluster secret file.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newTestCluster describes n nodes n1…nn sharing a secret file, the last
// standbys of them standby nodes; none runs yet.
func newTestCluster(t *testing.T, n, standbys int) []*ternNode {
	t.Helper()
	secret := writeSecret(t, testClusterSecret)
	nodes := make([]*ternNode, n)
	var peers []string
	for i := range nodes {
		addr := freeport.Loopback(t)
		nodes[i] = &ternNode{name: fmt.Sprintf("n%d", i+1), clusterAddr: addr, dataDir: t.TempDir()}
		peer := nodes[i].name + "@" + nodes[i].clusterAddr
		if i >= n-standbys {
			peer += "/standby"
		}
		peers = append(peers, peer)
	}
	for i, nd := range nodes {
		nd.args = []string{"server", "--data-dir", nd.dataDir, "--amqp-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--mqtt-addr", "", "--mqtt-ws-addr", "", "--node-id", nd.name, "--cluster-addr", nd.clusterAddr,
			"--peers", strings.Join(peers, ","), "--cluster-secret-file", secret}
		if i >= n-standbys {
			nd.args = append(nd.args, "--role", "standby")
		}
	}
	return nodes
}

var (
	amqpListenLine = regexp.MustCompile(`msg="AMQP 0-9-1 listening" addr=(\S+)`)
	httpListenRe   = regexp.MustCompile(`msg="HTTP listening" addr=(\S+)`)
)

// start runs the node's process (again, after a kill, on the same data
// directory and addresses); it does not wait for it to serve.
func (nd *ternNode) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(ternBin, nd.args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nd.mu.Lock()
	nd.cmd, nd.exited, nd.amqpAddr, nd.httpAddr = cmd, make(chan struct{}), "", ""
	if nd.changed == nil {
		nd.changed = make(chan struct{})
	}
	exited := nd.exited
	nd.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			nd.addLine(sc.Text())
		}
		err := cmd.Wait()
		nd.mu.Lock()
		nd.exitErr = err
		nd.mu.Unlock()
		close(exited)
		nd.addLine("") // wake waiters
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s's log:\n%s", nd.name, nd.log())
		}
	})
}

func (nd *ternNode) addLine(line string) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if line != "" {
		nd.lines = append(nd.lines, line)
		if m := amqpListenLine.FindStringSubmatch(line); m != nil {
			nd.amqpAddr = m[1]
		}
		if m := httpListenRe.FindStringSubmatch(line); m != nil {
			nd.httpAddr = m[1]
		}
	}
	close(nd.changed)
	nd.changed = make(chan struct{})
}

func (nd *ternNode) log() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return strings.Join(nd.lines, "\n")
}

// waitFor waits until ok holds of the node's state (re-checked at each log
// line and every 100ms) or the timeout; it reports whether ok held.
func (nd *ternNode) waitFor(timeout time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		nd.mu.Lock()
		ch := nd.changed
		nd.mu.Unlock()
		if ok() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-ch:
		case <-time.After(min(left, 100*time.Millisecond)):
		}
	}
}

// waitLog waits for a log line matching re and returns it.
func (nd *ternNode) waitLog(t *testing.T, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	var found string
	if !nd.waitFor(timeout, func() bool {
		nd.mu.Lock()
		defer nd.mu.Unlock()
		for _, l := range nd.lines {
			if re.MatchString(l) {
				found = l
				return true
			}
		}
		return false
	}) {
		t.Fatalf("%s logged no line matching %s within %v", nd.name, re, timeout)
	}
	return found
}

// waitServing waits until the node listens for AMQP and HTTP.
func (nd *ternNode) waitServing(t *testing.T, timeout time.Duration) {
	t.Helper()
	if !nd.waitFor(timeout, func() bool {
		nd.mu.Lock()
		defer nd.mu.Unlock()
		return nd.amqpAddr != "" && nd.httpAddr != ""
	}) {
		t.Fatalf("%s is not serving after %v", nd.name, timeout)
	}
}

func (nd *ternNode) url() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return "amqp://guest:guest@" + nd.amqpAddr + "/"
}

func (nd *ternNode) kill9(t *testing.T) {
	t.Helper()
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-nd.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not die", nd.name)
	}
}

// startTestCluster starts every node and waits until all serve.
func startTestCluster(t *testing.T, n, standbys int) []*ternNode {
	t.Helper()
	nodes := newTestCluster(t, n, standbys)
	for _, nd := range nodes {
		nd.start(t)
	}
	for _, nd := range nodes {
		nd.waitServing(t, 60*time.Second)
	}
	return nodes
}

// The JSON of GET /api/cluster.
type clusterJSON struct {
	Node  string `json:"node"`
	Nodes []struct {
		Name      string `json:"name"`
		Address   string `json:"address"`
		Role      string `json:"role"`
		Reachable bool   `json:"reachable"`
	} `json:"nodes"`
	Groups []struct {
		ID        string   `json:"id"`
		Kind      string   `json:"kind"`
		VHost     string   `json:"vhost"`
		Queue     string   `json:"queue"`
		Leader    string   `json:"leader"`
		Term      uint64   `json:"term"`
		Commit    uint64   `json:"commit"`
		Applied   uint64   `json:"applied"`
		Voters    []string `json:"voters"`
		Learners  []string `json:"learners"`
		Followers []struct {
			Node  string `json:"node"`
			Match uint64 `json:"match"`
			Lag   uint64 `json:"lag"`
		} `json:"followers"`
	} `json:"groups"`
}

func (nd *ternNode) clusterStatus(t *testing.T) (clusterJSON, error) {
	t.Helper()
	nd.mu.Lock()
	addr := nd.httpAddr
	nd.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/cluster", nil)
	req.SetBasicAuth("guest", "guest") // the HTTP API needs a login (docs/security.md)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return clusterJSON{}, err
	}
	defer resp.Body.Close()
	var out clusterJSON
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /api/cluster: %s", resp.Status)
	}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// queueLeader asks nd who leads quorum queue name of vhost "/", waiting
// until a leader is known.
func queueLeader(t *testing.T, nd *ternNode, name string, timeout time.Duration) string {
	t.Helper()
	var leader string
	var last clusterJSON
	ok := nd.waitFor(timeout, func() bool {
		st, err := nd.clusterStatus(t)
		if err != nil {
			return false
		}
		last = st
		for _, g := range st.Groups {
			if g.Kind == "quorum" && g.VHost == "/" && g.Queue == name && g.Leader != "" {
				leader = g.Leader
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no leader for quorum queue %s on %s after %v: %+v", name, nd.name, timeout, last)
	}
	return leader
}
