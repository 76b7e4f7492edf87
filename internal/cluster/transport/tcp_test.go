package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// TestThreeNodesExchange: three transports send each other Raft messages
// in several groups (each (sender, group) stream arrives complete and in
// order), concurrent requests, remote errors and notifies.
func TestThreeNodesExchange(t *testing.T) {
	t.Parallel()
	nodes := []*node{startNode(t, 1, "", nil), startNode(t, 2, "", nil), startNode(t, 3, "", nil)}
	meshed(nodes...)
	waitConnected(t, nodes...)

	const perGroup, groups = 300, 4
	var wg sync.WaitGroup
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= perGroup; i++ {
					for g := range Group(groups) {
						// Batches of one and two messages, interleaved across groups.
						batch := []*raftpb.Message{msg(a.cfg.Self, b.cfg.Self, uint64(2*i), []byte("x"))}
						if i%3 == 0 {
							batch = append(batch, msg(a.cfg.Self, b.cfg.Self, uint64(2*i+1), []byte("y")))
						}
						a.SendRaft(b.cfg.Self, g, batch)
					}
				}
			}()
		}
	}
	wg.Wait()
	want := perGroup + perGroup/3
	for _, b := range nodes {
		for _, a := range nodes {
			if a == b {
				continue
			}
			for g := range Group(groups) {
				waitFor(t, "raft delivery", b.rec.signal, func() bool { return b.rec.count(a.cfg.Self, g) >= want })
				b.rec.mu.Lock()
				got := b.rec.raft[[2]uint64{a.cfg.Self, g}]
				b.rec.mu.Unlock()
				if len(got) != want {
					t.Fatalf("node %d got %d messages from %d in group %d, want %d", b.cfg.Self, len(got), a.cfg.Self, g, want)
				}
				last := uint64(0)
				for _, m := range got {
					if m.GetIndex() <= last || m.GetFrom() != a.cfg.Self || m.GetTo() != b.cfg.Self {
						t.Fatalf("node %d group %d: message %v after index %d: out of order or misaddressed", b.cfg.Self, g, m, last)
					}
					last = m.GetIndex()
				}
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := make(chan error, 1000)
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := fmt.Sprintf("req%d", i)
					got, err := a.Request(ctx, b.cfg.Self, kindEcho, []byte(body))
					if want := fmt.Sprintf("%d->%d:%s", a.cfg.Self, b.cfg.Self, body); err != nil || string(got) != want {
						errs <- fmt.Errorf("request %d->%d: %q, %v; want %q", a.cfg.Self, b.cfg.Self, got, err, want)
					}
				}()
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	_, err := nodes[0].Request(ctx, 3, kindFail, []byte("this"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "node 3 says no to this" {
		t.Fatalf("failing request: %v, want RemoteError from node 3", err)
	}
	if err := nodes[2].Notify(1, 7, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "notify", nodes[0].rec.signal, func() bool {
		nodes[0].rec.mu.Lock()
		defer nodes[0].rec.mu.Unlock()
		return len(nodes[0].rec.notify) == 1 && nodes[0].rec.notify[0] == "3:7:hello"
	})
	s := nodes[0].Stats().Peers[2]
	if s.BytesSent == 0 || s.BytesReceived == 0 || s.MessagesSent == 0 || s.MessagesReceived == 0 || s.Dropped != 0 {
		t.Fatalf("stats of node 1 for node 2: %+v", s)
	}
}

// TestOneConnectionPerPair: peers learned at the same instant on every
// node end with one connection per pair — the same socket seen from both
// ends — and no reconnects.
func TestOneConnectionPerPair(t *testing.T) {
	t.Parallel()
	nodes := []*node{startNode(t, 1, "", nil), startNode(t, 2, "", nil), startNode(t, 3, "", nil)}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					a.SetPeer(b.cfg.Self, b.Addr().String())
				}()
			}
		}
	}
	close(start)
	wg.Wait()
	waitConnected(t, nodes...)
	// Traffic both ways, so a second connection, if any, would show up.
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if _, err := a.Request(context.Background(), b.cfg.Self, kindEcho, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	total := uint64(0)
	for _, a := range nodes {
		total += a.Stats().Established
		for _, b := range nodes {
			if a == b {
				continue
			}
			sa, sb := a.Stats().Peers[b.cfg.Self], b.Stats().Peers[a.cfg.Self]
			if sa.LocalAddr != sb.RemoteAddr || sa.RemoteAddr != sb.LocalAddr {
				t.Errorf("nodes %d and %d see different connections: %+v / %+v", a.cfg.Self, b.cfg.Self, sa, sb)
			}
			if sa.Reconnects != 0 {
				t.Errorf("node %d reconnected to %d %d times", a.cfg.Self, b.cfg.Self, sa.Reconnects)
			}
		}
	}
	if total != 6 { // three pairs, each connection counted by both ends
		t.Fatalf("%d connections established in all, want 6", total)
	}
}

// rawDial connects to n and runs a dialer handshake as self with secret,
// returning the connection and the handshake's error.
func rawDial(t *testing.T, n *node, self, to NodeID, secret []byte) (net.Conn, *bufio.Reader, error) {
	t.Helper()
	nc, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	err = dialHandshake(br, bufio.NewWriter(nc), handshakeSide{self: self, secret: secret}, to, newNonce())
	return nc, br, err
}

// TestHandshakeRefusals: every refusal comes back to the dialer with its
// reason, is logged by the acceptor with the remote address, and leaves
// the acceptor serving its good peer.
func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", nil)
	n3 := startNode(t, 3, "", nil)
	meshed(n2, n3)
	n2.SetPeer(1, freeport.Loopback(t)) // known, but only the raw dials below speak for it
	waitConnected(t, n2, n3)

	cases := []struct {
		name       string
		self, to   NodeID
		secret     []byte
		wantReason string
	}{
		{"wrong secret", 1, 2, []byte("not the secret"), "wrong cluster secret"},
		{"unknown node", 7, 2, testSecret, "unknown node id 7"},
		{"our own id", 2, 2, testSecret, "peer claims our own node id 2"},
		{"higher id dials", 3, 2, testSecret, "only the lower id dials"},
		{"wrong target", 1, 9, testSecret, "peer dialed node 9 but this is node 2"},
	}
	for _, tc := range cases {
		nc, _, err := rawDial(t, n2, tc.self, tc.to, tc.secret)
		var re *RefusedError
		if !errors.As(err, &re) || !strings.Contains(re.Reason, tc.wantReason) {
			t.Errorf("%s: dialer got %v, want a refusal saying %q", tc.name, err, tc.wantReason)
			continue
		}
		local := nc.LocalAddr().String()
		waitFor(t, tc.name+" log line", nil, func() bool {
			return n2.log.lineWith("cluster peer refused", "level=WARN", "remote="+local, tc.wantReason) != ""
		})
	}
	// Not a cluster peer at all.
	nc, err := net.Dial("tcp", n2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "garbage refused", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "remote="+nc.LocalAddr().String(), "not a tern cluster peer") != ""
	})
	if got, err := n3.Request(context.Background(), 2, kindEcho, []byte("still")); err != nil || string(got) != "3->2:still" {
		t.Fatalf("good peer after refusals: %q, %v", got, err)
	}
	if s := n2.Stats(); s.Refused < uint64(len(cases))+1 {
		t.Fatalf("refused %d, want at least %d", s.Refused, len(cases)+1)
	}
}

// TestWrongSecretNode: a whole node with the wrong secret never connects;
// both ends log why; the other two carry on.
func TestWrongSecretNode(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", nil)
	n2 := startNode(t, 2, "", func(c *TCPConfig) { c.Secret = []byte("another secret") })
	n3 := startNode(t, 3, "", nil)
	meshed(n1, n2, n3)
	waitConnected(t, n1, n3)
	waitFor(t, "node 2 refuses node 1", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "wrong cluster secret", "claimed_node=1", "remote=127.0.0.1:") != ""
	})
	waitFor(t, "node 3 refuses node 2", nil, func() bool {
		return n3.log.lineWith("cluster peer refused", "wrong cluster secret", "claimed_node=2") != ""
	})
	waitFor(t, "node 1 logs the refusal", nil, func() bool {
		return n1.log.lineWith("cluster handshake failed", "peer=2", "refused by peer: wrong cluster secret") != ""
	})
	if connected(n1, 2) || connected(n2, 3) {
		t.Fatal("a node with the wrong secret got connected")
	}
	n1.SendRaft(3, 5, []*raftpb.Message{msg(1, 3, 1, nil)})
	waitFor(t, "delivery 1->3", n3.rec.signal, func() bool { return n3.rec.count(1, 5) == 1 })
}

// TestUnknownNodeNode: a node that is not among the acceptor's peers is
// refused and logged.
func TestUnknownNodeNode(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", nil)
	n2 := startNode(t, 2, "", nil)
	n1.SetPeer(2, n2.Addr().String()) // n2 never learns about n1
	waitFor(t, "refusal logged", nil, func() bool {
		return n2.log.lineWith("cluster peer refused", "unknown node id 1", "remote=127.0.0.1:") != ""
	})
	waitFor(t, "dialer logs", nil, func() bool {
		return n1.log.lineWith("cluster handshake failed", "unknown node id 1") != ""
	})
	if connected(n1, 2) {
		t.Fatal("unknown node connected")
	}
}

// TestProtocolErrorClosesOnlyThatConnection: a frame longer than the limit
// from an authenticated peer closes that connection, and the node keeps
// serving its other peer.
func TestProtocolErrorClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", func(c *TCPConfig) { c.MaxFrame = 1 << 20 })
	n3 := startNode(t, 3, "", nil)
	meshed(n2, n3)
	n2.SetPeer(1, freeport.Loopback(t))
	waitConnected(t, n2, n3)
	nc, br, err := rawDial(t, n2, 1, 2, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "raw peer attached", nil, func() bool { return connected(n2, 1) })
	nc.Write(appendHeader(nil, header{typ: frameRaft, len: 1<<20 + 1}))
	// The node closes: reads end (after any ping it sent).
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := br.ReadByte(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection not closed after an oversized frame")
			}
			break
		}
	}
	waitFor(t, "protocol error logged", nil, func() bool {
		return n2.log.lineWith("cluster connection closed", "level=WARN", "peer=1", "exceeds the limit") != ""
	})
	if s := n2.Stats(); s.ProtocolErrors != 1 {
		t.Fatalf("protocol errors %d, want 1", s.ProtocolErrors)
	}
	if got, err := n2.Request(context.Background(), 3, kindEcho, []byte("ok")); err != nil || string(got) != "2->3:ok" {
		t.Fatalf("other peer after protocol error: %q, %v", got, err)
	}
}

// TestSpoofedSender: a Raft batch whose messages name a sender other than
// the authenticated peer is dropped and logged; the connection stays.
func TestSpoofedSender(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", nil)
	n2.SetPeer(1, freeport.Loopback(t))
	nc, _, err := rawDial(t, n2, 1, 2, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	spoofed, _ := appendRaftBatch(nil, 4, []*raftpb.Message{msg(1, 2, 1, nil), msg(3, 2, 2, nil)})
	honest, _ := appendRaftBatch(nil, 4, []*raftpb.Message{msg(1, 2, 3, nil)})
	nc.Write(append(spoofed, honest...))
	waitFor(t, "honest batch", n2.rec.signal, func() bool { return n2.rec.count(1, 4) == 1 })
	if line := n2.log.lineWith("names another sender", "message_from=3"); line == "" {
		t.Fatal("spoofed batch not logged")
	}
	if s := n2.Stats().Peers[1]; s.Dropped != 2 || !s.Connected {
		t.Fatalf("after a spoofed batch: %+v", s)
	}
	// A follower forwarding a leadership transfer keeps the transferee
	// as From (etcd raft's design): that message passes.
	transfer := msg(3, 2, 4, nil)
	transfer.Type = raftpb.MsgTransferLeader.Enum()
	forwarded, _ := appendRaftBatch(nil, 4, []*raftpb.Message{transfer})
	nc.Write(forwarded)
	waitFor(t, "forwarded transfer", n2.rec.signal, func() bool { return n2.rec.count(1, 4) == 2 })
}

// TestDuplicateDialKeepsNewest: two connections from the same (lower) peer
// at once — a restarted dialer racing its old connection — leave exactly
// one: the acceptor keeps the newer and closes the other.
func TestDuplicateDialKeepsNewest(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", nil)
	n2.SetPeer(1, freeport.Loopback(t))
	type dialed struct {
		nc  net.Conn
		br  *bufio.Reader
		err error
	}
	res := make(chan dialed, 2)
	for range 2 {
		go func() {
			nc, br, err := rawDial(t, n2, 1, 2, testSecret)
			res <- dialed{nc, br, err}
		}()
	}
	a, b := <-res, <-res
	if a.err != nil || b.err != nil {
		t.Fatalf("handshakes: %v, %v", a.err, b.err)
	}
	// Exactly one of the two is closed by node 2; the other is the live one.
	closed := make(chan net.Conn, 2)
	for _, d := range []dialed{a, b} {
		go func() {
			d.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			for {
				if _, err := d.br.ReadByte(); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						closed <- d.nc
					} else {
						closed <- nil
					}
					return
				}
			}
		}()
	}
	var gone []net.Conn
	for range 2 {
		if nc := <-closed; nc != nil {
			gone = append(gone, nc)
		}
	}
	if len(gone) != 1 {
		t.Fatalf("%d of the two connections closed, want 1", len(gone))
	}
	live := a.nc
	if gone[0] == a.nc {
		live = b.nc
	}
	if s := n2.Stats(); s.Peers[1].RemoteAddr != live.LocalAddr().String() || s.Established != 2 || s.Peers[1].Reconnects != 1 {
		t.Fatalf("node 2 keeps %s, want %s: %+v", s.Peers[1].RemoteAddr, live.LocalAddr(), s)
	}
}
