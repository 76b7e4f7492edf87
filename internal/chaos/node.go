package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Ports every node listens on, at its own address (NodeIP).
const (
	AMQPPort = 5672
	MQTTPort = 1883
	HTTPPort = 15672 // cluster nodes only: GET /api/cluster finds a queue's leader
)

// Node is one `tern server` process of the run, on its own address and
// data directory. Its log goes to Dir/node.log, across restarts.
type Node struct {
	ID      int
	Bin     string // the tern binary
	Dir     string // config, log; the data directory is DataDir
	DataDir string // Dir/data unless a fault put it on a small file system
	// Config is extra TOML appended to the generated configuration.
	Config string
	// Args are extra `tern server` flags (a cluster node's settings).
	Args []string
	// Cluster: the node is one of several. It serves HTTP (for
	// /api/cluster) and no MQTT: MQTT session queues and streams stay on
	// the node that made them, and the cluster workload is quorum queues.
	Cluster bool
	// Control is the directory the chaos hooks of a -tags chaos binary
	// read (TERN_CHAOS_CONTROL): clock_offset_ms, delay_ms.
	Control string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the running process has exited
}

// AMQPAddr is the node's AMQP listen address.
func (n *Node) AMQPAddr() string { return net.JoinHostPort(NodeIP(n.ID), fmt.Sprint(AMQPPort)) }

// MQTTAddr is the node's MQTT listen address.
func (n *Node) MQTTAddr() string { return net.JoinHostPort(NodeIP(n.ID), fmt.Sprint(MQTTPort)) }

// HTTPAddr is the node's management address.
func (n *Node) HTTPAddr() string { return net.JoinHostPort(NodeIP(n.ID), fmt.Sprint(HTTPPort)) }

// listeners are the addresses Start waits for.
func (n *Node) listeners() []string {
	if n.Cluster {
		return []string{n.AMQPAddr(), n.HTTPAddr()}
	}
	return []string{n.AMQPAddr(), n.MQTTAddr()}
}

func (n *Node) configPath() string { return filepath.Join(n.Dir, "tern.toml") }

func (n *Node) writeConfig() error {
	if n.DataDir == "" {
		n.DataDir = filepath.Join(n.Dir, "data")
	}
	// HTTP on every node: the runner reads queue depths after the drain
	// (queueEmpty), and a cluster's status.
	mqtt, http := n.MQTTAddr(), n.HTTPAddr()
	if n.Cluster {
		mqtt = ""
	}
	cfg := fmt.Sprintf("data_dir = %q\namqp_addr = %q\nmqtt_addr = %q\nhttp_addr = %q\nmqtt_ws_addr = \"\"\nsegment_size = \"1MiB\"\n%s\n",
		n.DataDir, n.AMQPAddr(), mqtt, http, n.Config)
	return os.WriteFile(n.configPath(), []byte(cfg), 0o644)
}

// Start starts the node and waits until its listeners accept.
func (n *Node) Start(ctx context.Context) error {
	if err := n.Spawn(); err != nil {
		return err
	}
	return n.WaitListening(ctx)
}

// Spawn starts the node's process without waiting for it. A cluster node
// opens its AMQP port only once the metadata group has a leader, so the
// nodes of a cluster are all spawned first and then waited for.
func (n *Node) Spawn() error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("chaos: node %d already running", n.ID)
	}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return err
	}
	if err := n.writeConfig(); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(n.Dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "--- chaos: starting node %d at %s\n", n.ID, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(n.Bin, append([]string{"server", "--config", n.configPath()}, n.Args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if n.Control != "" {
		cmd.Env = append(os.Environ(), ControlEnv+"="+n.Control)
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("chaos: start node %d: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// WaitListening waits until the spawned node's listeners accept.
func (n *Node) WaitListening(ctx context.Context) error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return fmt.Errorf("chaos: node %d was not started", n.ID)
	}
	for _, addr := range n.listeners() {
		if err := waitListening(ctx, addr, done); err != nil {
			return fmt.Errorf("chaos: node %d: %w (see %s)", n.ID, err, filepath.Join(n.Dir, "node.log"))
		}
	}
	return nil
}

// waitListening dials addr until it accepts, the process exits, or 60 s
// pass (a cluster node restarted on a loaded machine replays its log and
// waits for the metadata group before it opens its AMQP port).
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited while starting")
		case <-ctx.Done():
			return fmt.Errorf("%s not listening: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL (and SIGCONT, in case it was paused) and waits for exit.
func (n *Node) Kill() error {
	return n.stop(syscall.SIGKILL)
}

// Stop asks the node to shut down (SIGTERM) and waits, killing it after 15 s.
func (n *Node) Stop() error {
	return n.stop(syscall.SIGTERM)
}

func (n *Node) stop(sig syscall.Signal) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return nil
	}
	_ = n.cmd.Process.Signal(sig)
	_ = n.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
	return nil
}

// Signal sends sig (SIGSTOP, SIGCONT) to the running node.
func (n *Node) Signal(sig syscall.Signal) error {
	if err := RequireSandbox(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("chaos: node %d is not running", n.ID)
	}
	return n.cmd.Process.Signal(sig)
}

// Running says whether the node's process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}
