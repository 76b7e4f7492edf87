package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestCloseJoinsGoroutines: after Close returns, every goroutine the
// transports started is gone, including a request handler that was
// blocked (its ctx is cancelled). Not parallel: it counts goroutines
// while the parallel tests are paused.
func TestCloseJoinsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	nodes := []*node{startNode(t, 1, "", nil), startNode(t, 2, "", nil), startNode(t, 3, "", nil)}
	meshed(nodes...)
	waitConnected(t, nodes...)
	nodes[0].SendRaft(2, 1, []*raftpb.Message{msg(1, 2, 1, nil)})
	blocked := make(chan error, 1)
	go func() {
		_, err := nodes[2].Request(context.Background(), 1, kindBlock, nil)
		blocked <- err
	}()
	waitFor(t, "blocked request arrives", nil, func() bool { return nodes[0].Stats().Peers[3].MessagesReceived == 1 })
	for _, n := range nodes {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	if err := <-blocked; !errors.Is(err, ErrUnreachable) {
		t.Fatalf("request blocked at a closed node: %v", err)
	}
	waitFor(t, "goroutines to exit", nil, func() bool { return runtime.NumGoroutine() <= before })
	// Sends after Close drop quietly.
	nodes[0].SendRaft(2, 1, []*raftpb.Message{msg(1, 2, 2, nil)})
	if err := nodes[0].Notify(2, 1, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("notify after close: %v", err)
	}
}

// TestRemoveAndMovePeer: a removed peer's connection closes and its
// redials are refused; a peer whose address changes is dialed there.
func TestRemoveAndMovePeer(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", nil)
	n2 := startNode(t, 2, "", nil)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
	n2.RemovePeer(1)
	waitFor(t, "node 1 sees the close", nil, func() bool { return !connected(n1, 2) })
	waitFor(t, "redial refused", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "unknown node id 1") != ""
	})
	if _, ok := n2.Stats().Peers[1]; ok {
		t.Fatal("removed peer still in stats")
	}
	if _, err := n2.Request(context.Background(), 1, kindEcho, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("request to a removed peer: %v", err)
	}

	// Node 2 moves: a new transport with id 2 elsewhere; node 1 is told.
	n2b := startNode(t, 2, "", nil)
	n2b.SetPeer(1, n1.Addr().String())
	n1.SetPeer(2, n2b.Addr().String())
	waitConnected(t, n1, n2b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := n1.Request(ctx, 2, kindEcho, []byte("moved")); err != nil || string(got) != "1->2:moved" {
		t.Fatalf("request after move: %q, %v", got, err)
	}
	if got := n1.Stats().Peers[2].RemoteAddr; got != n2b.Addr().String() {
		t.Fatalf("node 1 connected to %s, want %s", got, n2b.Addr())
	}
}

// TestConfigErrors: the required fields are required.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	h := newRecorder(1)
	for name, cfg := range map[string]TCPConfig{
		"no secret":  {Self: 1, ListenAddr: "127.0.0.1:0", Handler: h},
		"no handler": {Self: 1, ListenAddr: "127.0.0.1:0", Secret: testSecret},
		"node 0":     {ListenAddr: "127.0.0.1:0", Secret: testSecret, Handler: h},
		"no address": {Self: 1, Secret: testSecret, Handler: h},
		"idle<=ping": {Self: 1, ListenAddr: "127.0.0.1:0", Secret: testSecret, Handler: h, PingInterval: time.Second, IdleTimeout: time.Second},
	} {
		if tr, err := NewTCP(cfg); err == nil {
			tr.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestHandshakeLimits: a connection that never finishes its hello is closed at
// the handshake timeout; beyond 64 handshakes at once a new connection is
// refused at once; both are logged; a real peer gets in once they clear.
func TestHandshakeLimits(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", func(c *TCPConfig) { c.HandshakeTimeout = 2 * time.Second })
	silent := make([]net.Conn, 0, maxHandshakes)
	for i := range maxHandshakes {
		// From several addresses: one holds at most maxHandshakesPerIP.
		silent = append(silent, stall(t, fmt.Sprintf("127.0.0.%d", 40+i/maxHandshakesPerIP), n2.Addr().String()))
	}
	// The 65th: closed at once, whatever it sends.
	waitFor(t, "handshake slots taken", nil, func() bool { return len(n2.handshakes) == maxHandshakes })
	extra := dialFrom(t, "127.0.0.39", n2.Addr().String())
	extra.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("connection over the handshake limit: %v, want it closed", err)
	}
	waitFor(t, "limit logged", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "too many connections in handshake") != ""
	})
	// The silent ones time out.
	for _, nc := range silent {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("silent connection: %v, want it closed at the handshake timeout", err)
		}
	}
	waitFor(t, "timeout logged", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "handshake timed out") != ""
	})
	n1 := startNode(t, 1, "", nil)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
