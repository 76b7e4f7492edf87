//go:build chaos

package transport

import (
	"go.etcd.io/raft/v3/raftpb"

	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChaosDelayHoldsFramesToOnePeer: with -tags chaos, a delay_ms line
// for node 2's address delays node 1's frames to node 2 by at least that
// much, while node 2's frames to node 1 (no line) and everything after
// the line is removed go at once.
func TestChaosDelayHoldsFramesToOnePeer(t *testing.T) {
	a, b := startNode(t, 1, "", nil), startNode(t, 2, "", nil)
	meshed(a, b)
	waitConnected(t, a, b)
	path := filepath.Join(t.TempDir(), delayFile)
	t.Cleanup(func() { delays.Store(nil) })
	const delay = 400 * time.Millisecond
	if err := os.WriteFile(path, []byte(b.Addr().String()+" 400\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loadDelays(path)

	send := func(from, to *node, index uint64) time.Duration {
		before := to.rec.count(from.cfg.Self, 0)
		start := time.Now()
		from.SendRaft(to.cfg.Self, 0, []*raftpb.Message{msg(from.cfg.Self, to.cfg.Self, index, []byte("d"))})
		waitFor(t, "delivery", to.rec.signal, func() bool { return to.rec.count(from.cfg.Self, 0) > before })
		return time.Since(start)
	}
	if took := send(a, b, 1); took < delay {
		t.Fatalf("1 to 2 with a %v delay arrived after %v", delay, took)
	}
	if took := send(b, a, 1); took >= delay {
		t.Fatalf("2 to 1 without a delay took %v", took)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	loadDelays(path)
	if took := send(a, b, 2); took >= delay {
		t.Fatalf("1 to 2 after the delay was removed took %v", took)
	}
	// A malformed file keeps the last setting (none).
	if err := os.WriteFile(path, []byte("127.0.0.1 soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loadDelays(path)
	if d := peerDelay(b.Addr().String()); d != 0 {
		t.Fatalf("a bad line set a delay of %v", d)
	}
	// A host alone matches every port of it.
	if err := os.WriteFile(path, []byte("127.0.0.1 250\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loadDelays(path)
	if d := peerDelay(b.Addr().String()); d != 250*time.Millisecond {
		t.Fatalf("host line: delay %v", d)
	}
}
