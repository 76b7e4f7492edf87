package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// broker is what a measurement needs of a broker: its AMQP URLs (one per
// node), the processes whose CPU and memory count, and, for Tern, the HTTP
// addresses whose /metrics and /api/cluster it reads.
type broker struct {
	name  string
	urls  []string
	pids  func() []int
	https []string // Tern only
}

// nodeLogLevel is every node's --log-level (the -log-level flag).
var nodeLogLevel = "warn"

// ternNode is one `tern server` daemon.
type ternNode struct {
	name     string
	args     []string
	log      string
	amqpAddr string
	httpAddr string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// start runs the node in its own session (setsid), its output in its log
// file, and waits until its AMQP port accepts connections.
func (n *ternNode) start(bin string) error {
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(bin, n.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	exited := n.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return n.waitServing(2 * time.Minute)
}

func (n *ternNode) waitServing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("%s exited; see %s", n.name, n.log)
		default:
		}
		if c, err := net.DialTimeout("tcp", n.amqpAddr, time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not serving AMQP on %s after %v; see %s", n.name, n.amqpAddr, timeout, n.log)
}

func (n *ternNode) pid() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

func (n *ternNode) kill9() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

func (n *ternNode) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		n.kill9()
	}
}

func (n *ternNode) url() string { return "amqp://guest:guest@" + n.amqpAddr + "/" }

// ternCluster describes (does not start) a cluster of size nodes, or a
// single node when size is 1, on ports base+i (AMQP), 10000+base+i (HTTP)
// and 20000+base+i (cluster), with data under dir.
func ternCluster(dir string, base, size int, pprof bool) ([]*ternNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var peers []string
	for i := 1; i <= size; i++ {
		peers = append(peers, fmt.Sprintf("n%d@127.0.0.1:%d", i, 20000+base+i))
	}
	secret := filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(secret, []byte("clusterbench-secret-0123456789abcdef\n"), 0o600); err != nil {
		return nil, err
	}
	var nodes []*ternNode
	for i := 1; i <= size; i++ {
		n := &ternNode{name: fmt.Sprintf("n%d", i), log: filepath.Join(dir, fmt.Sprintf("n%d.log", i)),
			amqpAddr: fmt.Sprintf("127.0.0.1:%d", base+i), httpAddr: fmt.Sprintf("127.0.0.1:%d", 10000+base+i)}
		n.args = []string{"server", "--data-dir", filepath.Join(dir, n.name), "--amqp-addr", n.amqpAddr,
			"--http-addr", n.httpAddr, "--mqtt-addr", "", "--mqtt-ws-addr", "", "--log-level", nodeLogLevel}
		if pprof {
			n.args = append(n.args, "--pprof")
		}
		if size > 1 {
			n.args = append(n.args, "--node-id", n.name, "--cluster-addr", fmt.Sprintf("127.0.0.1:%d", 20000+base+i),
				"--peers", strings.Join(peers, ","), "--cluster-secret-file", secret)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// startAll starts the nodes together (a cluster node waits for the others).
func startAll(bin string, nodes []*ternNode) error {
	errs := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { errs <- n.start(bin) }()
	}
	var first error
	for range nodes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func ternBroker(name string, nodes []*ternNode) *broker {
	b := &broker{name: name, pids: func() []int {
		var p []int
		for _, n := range nodes {
			p = append(p, n.pid())
		}
		return p
	}}
	for _, n := range nodes {
		b.urls = append(b.urls, n.url())
		b.https = append(b.https, n.httpAddr)
	}
	return b
}

// The part of GET /api/cluster this program reads.
type clusterStatus struct {
	Nodes []struct {
		Name      string `json:"name"`
		Reachable bool   `json:"reachable"`
		Self      bool   `json:"self"`
	} `json:"nodes"`
	Groups []struct {
		Kind      string `json:"kind"`
		Queue     string `json:"queue"`
		Leader    string `json:"leader"`
		Followers []struct {
			Node string `json:"node"`
			Lag  uint64 `json:"lag"`
		} `json:"followers"`
	} `json:"groups"`
}

func status(httpAddr string) (clusterStatus, error) {
	var st clusterStatus
	c := http.Client{Timeout: 3 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/api/cluster", nil)
	if err != nil {
		return st, err
	}
	req.SetBasicAuth("guest", "guest") // the management API wants credentials
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/cluster: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// rabbitBroker reads the pids of rabbitmq-cluster.sh's nodes.
func rabbitBroker(dir string) (*broker, error) {
	b := &broker{name: "RabbitMQ"}
	var pids []int
	for i := 1; i <= 3; i++ {
		raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("n%d", i), "pid"))
		if err != nil {
			return nil, fmt.Errorf("RabbitMQ node %d: %w (start it with rabbitmq-cluster.sh)", i, err)
		}
		var pid int
		if _, err := fmt.Sscan(string(raw), &pid); err != nil {
			return nil, err
		}
		pids = append(pids, pid)
		b.urls = append(b.urls, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", 5690+i))
	}
	b.pids = func() []int { return pids }
	return b, nil
}
