package transport

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/testkit/freeport"
)

// TestIdleTimeout: a frame that arrives slowly — longer than the idle
// timeout in all, but with bytes flowing — is delivered; a peer that then
// goes silent is dropped; a healthy idle pair stays up on pings. The
// timeouts are generous for a loaded machine (the race detector, other
// tests in parallel): a ping delayed past the idle timeout would fail it.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	fast := func(c *TCPConfig) { c.IdleTimeout = 1500 * time.Millisecond; c.PingInterval = 100 * time.Millisecond }
	n2 := startNode(t, 2, "", fast)
	n3 := startNode(t, 3, "", fast)
	meshed(n2, n3)
	n2.SetPeer(1, freeport.Loopback(t))
	waitConnected(t, n2, n3)

	nc, _, err := rawDial(t, n2, 1, 2, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Time{})
	frame, err := appendRaftBatch(nil, 6, []*raftpb.Message{msg(1, 2, 1, make([]byte, 300<<10))})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for len(frame) > 0 {
		n := min(len(frame), 20<<10)
		if _, err := nc.Write(frame[:n]); err != nil {
			t.Fatalf("slow frame cut off after %v: %v", time.Since(start), err)
		}
		frame = frame[n:]
		time.Sleep(200 * time.Millisecond) // the slow link under test
	}
	waitFor(t, "slow frame delivered", n2.rec.signal, func() bool { return n2.rec.count(1, 6) == 1 })
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Fatalf("the frame took only %v: the test did not outlast the idle timeout", took)
	}
	waitFor(t, "silent peer dropped", nil, func() bool {
		return n2.log.lineWith("cluster connection closed", "peer=1", "idle timeout") != ""
	})

	time.Sleep(3 * time.Second) // the healthy pair idles for two idle timeouts
	if s := n2.Stats().Peers[3]; !s.Connected || s.Reconnects != 0 {
		t.Log(n2.log.lineWith("peer=3", "closed"), n3.log.lineWith("peer=2", "closed"))
		t.Fatalf("idle healthy pair: %+v", s)
	}
}
