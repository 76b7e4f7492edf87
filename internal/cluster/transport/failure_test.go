package transport

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// TestPeerRestart: when either end of a pair restarts on its address, the
// pair reconnects and delivery resumes.
func TestPeerRestart(t *testing.T) {
	t.Parallel()
	for _, restart := range []NodeID{1, 2} { // the dialer, then the acceptor
		n1 := startNode(t, 1, "", nil)
		n2 := startNode(t, 2, "", nil)
		meshed(n1, n2)
		waitConnected(t, n1, n2)
		n1.SendRaft(2, 0, []*raftpb.Message{msg(1, 2, 1, nil)})
		waitFor(t, "first delivery", n2.rec.signal, func() bool { return n2.rec.count(1, 0) == 1 })

		old, other := n1, n2
		if restart == 2 {
			old, other = n2, n1
		}
		addr := old.Addr().String()
		old.Close()
		waitFor(t, "disconnect seen", nil, func() bool { return !connected(other, old.cfg.Self) })
		again := startNode(t, restart, addr, nil)
		again.SetPeer(other.cfg.Self, other.Addr().String())
		if restart == 1 {
			n1 = again
		} else {
			n2 = again
		}
		waitConnected(t, n1, n2)
		n1.SendRaft(2, 0, []*raftpb.Message{msg(1, 2, 2, nil)})
		n2.SendRaft(1, 0, []*raftpb.Message{msg(2, 1, 2, nil)})
		waitFor(t, "delivery to 2 after restart", n2.rec.signal, func() bool { return n2.rec.count(1, 0) >= 1 })
		waitFor(t, "delivery to 1 after restart", n1.rec.signal, func() bool { return n1.rec.count(2, 0) >= 1 })
		if got, err := n2.Request(context.Background(), 1, kindEcho, []byte("r")); err != nil || string(got) != "2->1:r" {
			t.Fatalf("request after restart of %d: %q, %v", restart, got, err)
		}
		if s := other.Stats().Peers[restart]; s.Reconnects != 1 {
			t.Fatalf("restart of %d: the surviving node counts %d reconnects, want 1", restart, s.Reconnects)
		}
	}
}

// TestRequestToDeadPeer: a request to a peer nobody listens for ends
// with ErrUnreachable within its ctx (or ConnectWait); one whose
// connection dies while it waits ends at once.
func TestRequestToDeadPeer(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", func(c *TCPConfig) { c.ConnectWait = 400 * time.Millisecond })
	n1.SetPeer(2, freeport.Loopback(t))

	for _, timeout := range []time.Duration{150 * time.Millisecond, 10 * time.Second} {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		_, err := n1.Request(ctx, 2, kindEcho, nil)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("ctx %v: %v, want ErrUnreachable", timeout, err)
		}
		if took > min(timeout, 400*time.Millisecond)+2*time.Second {
			t.Fatalf("ctx %v: took %v", timeout, took)
		}
	}
	if _, err := n1.Request(context.Background(), 9, kindEcho, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("request to a non-peer: %v", err)
	}
	if err := n1.Notify(2, 1, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("notify to a dead peer: %v", err)
	}

	// In flight when the peer dies: the handler blocks until its ctx
	// ends, the peer closes, the caller hears at once.
	n3 := startNode(t, 3, "", nil)
	meshed(n1, n3)
	waitConnected(t, n1, n3)
	done := make(chan error, 1)
	go func() {
		_, err := n1.Request(context.Background(), 3, kindBlock, nil)
		done <- err
	}()
	waitFor(t, "request received", nil, func() bool { return n3.Stats().Peers[1].MessagesReceived == 1 })
	n3.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("in-flight request to a closed peer: %v, want ErrUnreachable", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request did not end when its peer closed")
	}
}

// TestSendRaftNeverBlocks: sends to a peer that is down, and to one that
// completed the handshake but never reads, return at once; what does not
// fit is dropped, counted and reported per group.
func TestSendRaftNeverBlocks(t *testing.T) {
	t.Parallel()
	var reported atomic.Int64
	n1 := startNode(t, 1, "", func(c *TCPConfig) {
		c.MaxQueueBytes = 256 << 10
		// The stalled peer must stay connected for the test: a SendRaft
		// that waited on the socket would wait these out, far beyond the
		// test's bound.
		c.WriteTimeout = 5 * time.Minute
		c.IdleTimeout = 5 * time.Minute
		c.Unreachable = func(to NodeID, group Group) {
			if to == 2 && group == 4 {
				reported.Add(1)
			}
		}
	})
	n1.SetPeer(2, freeport.Loopback(t))
	payload := make([]byte, 1024)
	const sends = 20000
	start := time.Now()
	for i := range sends {
		n1.SendRaft(2, 4, []*raftpb.Message{msg(1, 2, uint64(i), payload)})
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("%d sends to a dead peer took %v", sends, took)
	}
	if s := n1.Stats().Peers[2]; s.Dropped != sends || reported.Load() != sends {
		t.Fatalf("dead peer: dropped %d, reported %d, want %d", s.Dropped, reported.Load(), sends)
	}

	// A peer that handshakes and then never reads: the kernel buffers
	// fill, the writer stalls, the queue fills, SendRaft drops.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	stalled := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		br, bw := bufio.NewReader(nc), bufio.NewWriter(nc)
		side := handshakeSide{self: 3, secret: testSecret, known: func(id NodeID) bool { return id == 1 }}
		if _, err := acceptHandshake(br, bw, side, newNonce()); err != nil {
			nc.Close()
			return
		}
		stalled <- nc // and never read again
	}()
	n1.SetPeer(3, ln.Addr().String())
	var nc net.Conn
	select {
	case nc = <-stalled:
		defer nc.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("stalled peer never connected")
	}
	waitFor(t, "connected to the stalled peer", nil, func() bool { return connected(n1, 3) })
	// 64 MiB in 32 KiB messages: more than the kernel's socket buffers
	// and the 256 KiB queue hold together.
	big := make([]byte, 32<<10)
	const bigSends = 2048
	start = time.Now()
	for i := range bigSends {
		n1.SendRaft(3, 4, []*raftpb.Message{msg(1, 3, uint64(i), big)})
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("%d sends to a stalled peer took %v", bigSends, took)
	}
	s := n1.Stats().Peers[3]
	if s.Dropped == 0 || s.Dropped+s.MessagesSent != bigSends {
		t.Fatalf("stalled peer: dropped %d + sent %d, want %d in all with some dropped", s.Dropped, s.MessagesSent, bigSends)
	}
	if !s.Connected {
		t.Fatal("a full queue should not drop the connection")
	}
}

// TestSourceAddress: nodes on 127.0.0.11 and 127.0.0.12 dial from their
// own address, so the acceptor sees the dialer's listen IP.
func TestSourceAddress(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "127.0.0.11:0", nil)
	n2 := startNode(t, 2, "127.0.0.12:0", nil)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
	remote, err := net.ResolveTCPAddr("tcp", n2.Stats().Peers[1].RemoteAddr)
	if err != nil {
		t.Fatal(err)
	}
	if !remote.IP.Equal(net.ParseIP("127.0.0.11")) {
		t.Fatalf("node 2 sees node 1 from %v, want 127.0.0.11", remote)
	}
	local := n1.Stats().Peers[2].LocalAddr
	if local != n2.Stats().Peers[1].RemoteAddr {
		t.Fatalf("dialer local %s != acceptor remote %s", local, n2.Stats().Peers[1].RemoteAddr)
	}
}

// TestConnectionKills: connections cut under a steady stream, from either
// end, ten times over: every cut heals, and each (sender, group) stream
// arrives with gaps (dropped while down) but never a duplicate or a
// message out of order.
func TestConnectionKills(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", func(c *TCPConfig) { c.BackoffMax = 100 * time.Millisecond })
	n2 := startNode(t, 2, "", nil)
	meshed(n1, n2)
	waitConnected(t, n1, n2)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, pair := range [][2]*node{{n1, n2}, {n2, n1}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := pair[0], pair[1]
			for i := uint64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				from.SendRaft(to.cfg.Self, i%3, []*raftpb.Message{msg(from.cfg.Self, to.cfg.Self, i, nil)})
				if i%64 == 0 {
					time.Sleep(time.Millisecond) // a steady stream, not a flood
				}
			}
		}()
	}
	total := func() int { return n2.rec.count(1, 0) + n1.rec.count(2, 0) }
	// Each cut waits for a connection both ends installed after the last
	// cut, carrying traffic: frames a reader had buffered before a cut
	// still arrive after it, so traffic alone does not show that the
	// redial finished, and cutting the far end's stale half of the old
	// connection would not make a reconnect.
	seen := map[*conn]bool{}
	for kill := range 10 {
		before := total()
		var c1, c2 *conn
		waitFor(t, "traffic on a fresh connection", n2.rec.signal, func() bool {
			c1, c2 = n1.peer(2).conn.Load(), n2.peer(1).conn.Load()
			return c1 != nil && c2 != nil && !seen[c1] && !seen[c2] && total() > before+50
		})
		seen[c1], seen[c2] = true, true
		victim := c1
		if kill%2 == 1 {
			victim = c2
		}
		victim.close(errors.New("cut by the test"))
	}
	before := total()
	waitFor(t, "traffic after the last cut", n2.rec.signal, func() bool { return total() > before+50 })
	close(stop)
	wg.Wait()

	for _, n := range []*node{n1, n2} {
		n.rec.mu.Lock()
		for k, msgs := range n.rec.raft {
			last := uint64(0)
			for _, m := range msgs {
				if m.GetIndex() <= last {
					n.rec.mu.Unlock()
					t.Fatalf("node %d, stream %v: index %d after %d", n.cfg.Self, k, m.GetIndex(), last)
				}
				last = m.GetIndex()
			}
		}
		n.rec.mu.Unlock()
	}
	if r := n1.Stats().Peers[2].Reconnects; r < 10 {
		t.Fatalf("%d reconnects after 10 cuts", r)
	}
}
