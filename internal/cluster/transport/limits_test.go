package transport

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestLargeFrames: a message bigger than the send queue bound (a
// snapshot) still goes when the queue is empty and arrives intact; one
// bigger than the frame limit is dropped at the sender with a log line.
func TestLargeFrames(t *testing.T) {
	t.Parallel()
	small := func(c *TCPConfig) { c.MaxQueueBytes = 1 << 20; c.MaxFrame = 4 << 20 }
	n1 := startNode(t, 1, "", small)
	n2 := startNode(t, 2, "", small)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	n1.SendRaft(2, 8, []*raftpb.Message{msg(1, 2, 1, big)})
	waitFor(t, "big message", n2.rec.signal, func() bool { return n2.rec.count(1, 8) == 1 })
	n2.rec.mu.Lock()
	got := n2.rec.raft[[2]uint64{1, 8}][0].GetEntries()[0].GetData()
	n2.rec.mu.Unlock()
	if !bytes.Equal(got, big) {
		t.Fatalf("big message arrived with %d bytes, want %d equal", len(got), len(big))
	}

	huge := make([]byte, 5<<20)
	n1.SendRaft(2, 9, []*raftpb.Message{msg(1, 2, 1, huge)})
	if line := n1.log.lineWith("larger than the frame limit", "group=9"); line == "" {
		t.Fatal("oversized batch not logged")
	}
	if s := n1.Stats().Peers[2]; s.Dropped != 1 || !s.Connected {
		t.Fatalf("after an oversized batch: %+v", s)
	}
	if _, err := n1.Request(context.Background(), 2, kindEcho, huge); err == nil || !strings.Contains(err.Error(), "exceeds the frame limit") {
		t.Fatalf("oversized request: %v", err)
	}
}

// TestRequestDeadlineAndBusy: the caller's deadline reaches the remote
// handler; a request over MaxInflight is refused at once with a busy
// error while Raft traffic keeps flowing.
func TestRequestDeadlineAndBusy(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, 1, "", nil)
	n2 := startNode(t, 2, "", func(c *TCPConfig) { c.MaxInflight = 2 })
	meshed(n1, n2)
	waitConnected(t, n1, n2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, err := n1.Request(ctx, 2, kindDeadline, nil); err != nil || (string(got) != "30" && string(got) != "29") {
		t.Fatalf("remote deadline: %q, %v; want about 30 s", got, err)
	}
	if got, err := n1.Request(context.Background(), 2, kindDeadline, nil); err != nil || string(got) != "none" {
		t.Fatalf("remote without deadline: %q, %v", got, err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	// Either side's deadline may fire first: the caller's ctx, or the
	// remote handler's ctx (its error comes back as a RemoteError).
	_, err := n1.Request(short, 2, kindBlock, nil)
	var re *RemoteError
	if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &re) && re.Msg == context.DeadlineExceeded.Error()) {
		t.Fatalf("blocked request: %v, want its deadline", err)
	}

	inflight := func() int {
		if c := n2.peer(1).conn.Load(); c != nil {
			return len(c.inflight)
		}
		return -1
	}
	received := func() uint64 { return n2.Stats().Peers[1].MessagesReceived }
	// Three requests so far; the last may reach node 2 after its caller
	// gave up, so wait for its arrival, then for its handler to end.
	waitFor(t, "the blocked handler to end at its deadline", nil, func() bool { return received() == 3 && inflight() == 0 })

	block, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n1.Request(block, 2, kindBlock, nil)
		}()
	}
	waitFor(t, "two handlers running", nil, func() bool { return received() == 5 && inflight() == 2 })
	_, err = n1.Request(ctx, 2, kindEcho, nil)
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "busy") {
		t.Fatalf("request over the limit: %v, want a busy RemoteError", err)
	}
	n1.SendRaft(2, 1, []*raftpb.Message{msg(1, 2, 1, nil)})
	waitFor(t, "raft past busy handlers", n2.rec.signal, func() bool { return n2.rec.count(1, 1) == 1 })
	stop()
	wg.Wait()
	if n2.Stats().Busy != 1 {
		t.Fatalf("busy count %d, want 1", n2.Stats().Busy)
	}
}

// TestQueueReserve: a full queue refuses big frames but keeps an eighth
// more for small ones (heartbeats, votes); an empty queue takes anything.
func TestQueueReserve(t *testing.T) {
	t.Parallel()
	c := &conn{t: &TCP{cfg: TCPConfig{MaxQueueBytes: 8000}}}
	for _, tc := range []struct {
		queued, frame int
		want          bool
	}{
		{0, 1 << 20, true},  // empty: a snapshot goes
		{7000, 1000, true},  // up to the limit
		{7000, 1001, true},  // small: into the reserve
		{7000, 5000, false}, // big: refused
		{8000, 64, true},    // full, a heartbeat still fits
		{8999, 1, true},     // the reserve's last byte
		{9000, 1, false},    // reserve exhausted
		{8000, smallFrame + 1, false},
	} {
		c.out.bytes = tc.queued
		if got := c.fits(tc.frame); got != tc.want {
			t.Errorf("queued %d, frame %d: fits %v, want %v", tc.queued, tc.frame, got, tc.want)
		}
	}
}
