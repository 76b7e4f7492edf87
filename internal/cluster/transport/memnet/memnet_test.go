package memnet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// recorder is a transport.Handler that records what arrives.
type recorder struct {
	mu   sync.Mutex
	got  []uint64 // Index of each Raft message, in arrival order
	note chan struct{}
}

func newRecorder() *recorder { return &recorder{note: make(chan struct{}, 1<<16)} }

func (r *recorder) HandleRaft(_ NodeID, _ transport.Group, msgs []*raftpb.Message) {
	r.mu.Lock()
	for _, m := range msgs {
		r.got = append(r.got, m.GetIndex())
	}
	r.mu.Unlock()
	for range msgs {
		r.note <- struct{}{}
	}
}
func (r *recorder) HandleRequest(_ context.Context, from NodeID, kind uint8, body []byte) ([]byte, error) {
	if kind == 0 {
		return nil, errors.New("refused")
	}
	return append([]byte{byte(from)}, body...), nil
}
func (r *recorder) HandleNotify(NodeID, uint8, []byte) { r.note <- struct{}{} }

func (r *recorder) indexes() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.got...)
}

// waitN waits for n arrivals (bounded).
func (r *recorder) waitN(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.note:
		case <-time.After(5 * time.Second):
			t.Fatalf("only some of %d messages arrived: %v", n, r.indexes())
		}
	}
}

// quiet checks that nothing more arrives for a moment.
func (r *recorder) quiet(t *testing.T) {
	t.Helper()
	select {
	case <-r.note:
		t.Fatalf("unexpected arrival: %v", r.indexes())
	case <-time.After(20 * time.Millisecond):
	}
}

func msgs(from, to uint64) []*raftpb.Message {
	var ms []*raftpb.Message
	for i := from; i < to; i++ {
		ms = append(ms, &raftpb.Message{Type: raftpb.MsgApp.Enum(), Index: new(i)})
	}
	return ms
}

func pair(t *testing.T, n *Network) (*Endpoint, *recorder) {
	a := n.Endpoint(1)
	b := n.Endpoint(2)
	r := newRecorder()
	b.SetHandler(r)
	a.SetHandler(newRecorder())
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, r
}

func TestDeliversInOrderWithoutFaults(t *testing.T) {
	n := New(nil, 1)
	a, r := pair(t, n)
	a.SendRaft(2, 1, msgs(0, 100))
	r.waitN(t, 100)
	for i, idx := range r.indexes() {
		if idx != uint64(i) {
			t.Fatalf("arrival %d is message %d", i, idx)
		}
	}
}

func TestPartitionIsolateAndHeal(t *testing.T) {
	n := New(nil, 1)
	a, r := pair(t, n)
	n.Partition([]NodeID{1}, []NodeID{2})
	a.SendRaft(2, 1, msgs(0, 1))
	r.quiet(t)
	n.Heal()
	a.SendRaft(2, 1, msgs(1, 2))
	r.waitN(t, 1)
	n.Isolate(2)
	a.SendRaft(2, 1, msgs(2, 3))
	r.quiet(t)
	if _, err := a.Request(context.Background(), 2, 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Request across an isolation: %v", err)
	}
	n.Heal()
	n.Cut(1, 2)
	a.SendRaft(2, 1, msgs(3, 4))
	r.quiet(t)
	n.Heal()
	a.SendRaft(2, 1, msgs(4, 5))
	r.waitN(t, 1)
	if got := r.indexes(); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Fatalf("arrived %v, want [1 4]", got)
	}
	if n.Dropped.Load() != 3 {
		t.Fatalf("dropped %d, want 3", n.Dropped.Load())
	}
}

func TestDropAndDuplicate(t *testing.T) {
	n := New(nil, 1)
	a, r := pair(t, n)
	n.Drop(1)
	a.SendRaft(2, 1, msgs(0, 10))
	r.quiet(t)
	n.Drop(0)
	n.Duplicate(1)
	a.SendRaft(2, 1, msgs(0, 10))
	r.waitN(t, 20)
	r.quiet(t)
	if n.Dropped.Load() != 10 || n.Duplicated.Load() != 10 {
		t.Fatalf("dropped %d duplicated %d", n.Dropped.Load(), n.Duplicated.Load())
	}
}

func TestDelayRunsOnTheClock(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	n := New(fc, 1)
	a, r := pair(t, n)
	n.Delay(time.Second, time.Second)
	a.SendRaft(2, 1, msgs(0, 3))
	r.quiet(t)
	fc.Advance(999 * time.Millisecond)
	r.quiet(t)
	fc.Advance(time.Millisecond)
	r.waitN(t, 3)
}

func TestReorderIsDeterministicForASeed(t *testing.T) {
	run := func(seed uint64) []uint64 {
		fc := clock.NewFake(time.Unix(0, 0))
		n := New(fc, seed)
		a, r := pair(t, n)
		n.Reorder(0.5, time.Second)
		a.SendRaft(2, 1, msgs(0, 50))
		fc.Advance(2 * time.Second)
		r.waitN(t, 50)
		return r.indexes()
	}
	first, again, other := run(3), run(3), run(4)
	sorted := true
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("seed 3 gave %v then %v", first, again)
		}
		if first[i] != uint64(i) {
			sorted = false
		}
	}
	if sorted {
		t.Fatalf("Reorder(0.5) left 50 messages in order: %v", first)
	}
	same := true
	for i := range first {
		same = same && first[i] == other[i]
	}
	if same {
		t.Fatal("seeds 3 and 4 reordered alike")
	}
}

func TestRequestNotifyAndClose(t *testing.T) {
	n := New(nil, 1)
	a, r := pair(t, n)
	got, err := a.Request(context.Background(), 2, 5, []byte("hi"))
	if err != nil || string(got) != "\x01hi" {
		t.Fatalf("Request = %q, %v", got, err)
	}
	_, err = a.Request(context.Background(), 2, 0, nil)
	var re *transport.RemoteError
	if !errors.As(err, &re) || re.Msg != "refused" {
		t.Fatalf("refused Request: %v", err)
	}
	if err := a.Notify(2, 1, []byte("n")); err != nil {
		t.Fatal(err)
	}
	r.waitN(t, 1)
	if err := a.Notify(3, 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Notify to an unknown node: %v", err)
	}
	_ = a.Close()
	a.SendRaft(2, 1, msgs(0, 1))
	r.quiet(t)
	if _, err := a.Request(context.Background(), 2, 1, nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Request from a closed endpoint: %v", err)
	}
}

func TestQueueIsBounded(t *testing.T) {
	n := New(nil, 1)
	a := n.Endpoint(1)
	b := n.Endpoint(2)
	defer a.Close()
	defer b.Close()
	block := make(chan struct{})
	b.SetHandler(blockingHandler{block})
	for i := range QueueLen + 100 {
		a.SendRaft(2, 1, msgs(uint64(i), uint64(i+1)))
	}
	close(block)
	if n.Dropped.Load() < 99 {
		t.Fatalf("dropped %d with a full queue, want at least 99", n.Dropped.Load())
	}
}

type blockingHandler struct{ block chan struct{} }

func (h blockingHandler) HandleRaft(NodeID, transport.Group, []*raftpb.Message) { <-h.block }
func (h blockingHandler) HandleRequest(context.Context, NodeID, uint8, []byte) ([]byte, error) {
	return nil, nil
}
func (h blockingHandler) HandleNotify(NodeID, uint8, []byte) {}
