package raftnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// countSM is a minimal state machine: it counts applies and returns the
// count.
type countSM struct {
	mu      sync.Mutex
	n       int
	leaders []NodeID
}

func (s *countSM) Apply(uint64, []byte) any  { s.mu.Lock(); defer s.mu.Unlock(); s.n++; return s.n }
func (s *countSM) Snapshot() ([]byte, error) { return nil, nil }
func (s *countSM) Restore([]byte) error      { return nil }
func (s *countSM) LeaderChanged(l uint64, _ bool) {
	s.mu.Lock()
	s.leaders = append(s.leaders, l)
	s.mu.Unlock()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// newTestHost is one Host on a memnet endpoint, ticked by hand on fc.
func newTestHost(t *testing.T, fc *clock.Fake, logs *syncBuffer) *Host {
	t.Helper()
	net := memnet.New(fc, 1)
	ep := net.Endpoint(1)
	stores := map[uint64]*MemoryStorage{}
	var mu sync.Mutex
	h := NewHost(HostConfig{
		ID: 1, Transport: ep, Clock: fc,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		NewStorage: func(g uint64) Storage {
			mu.Lock()
			defer mu.Unlock()
			if stores[g] == nil {
				stores[g] = NewMemoryStorage()
			}
			return stores[g]
		},
	})
	ep.SetHandler(h)
	t.Cleanup(h.Close)
	return h
}

// tickUntil advances fc one tick at a time until cond holds (bounded).
func tickUntil(t *testing.T, fc *clock.Fake, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		fc.Advance(100 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not reached in 2000 ticks")
}

func TestSingleNodeGroupProposes(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	h := newTestHost(t, fc, &syncBuffer{})
	sm := &countSM{}
	g, err := h.Start(5, []NodeID{1}, nil, sm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Start(5, []NodeID{1}, nil, sm); !errors.Is(err, ErrGroupExists) {
		t.Fatalf("second Start: %v, want ErrGroupExists", err)
	}
	tickUntil(t, fc, g.IsLeader)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := 1; want <= 3; want++ {
		v, err := g.Propose(ctx, []byte("x"))
		if err != nil || v != want {
			t.Fatalf("Propose = %v, %v; want %d", v, err, want)
		}
	}
	st := g.Status()
	if st.State != "leader" || st.Leader != 1 || st.Applied < 4 || st.Commit < st.Applied {
		t.Fatalf("status %+v", st)
	}
	if s := h.Stats(); s.Applied != 3 || s.CommitLatency.Count != 3 || s.BecameLeader != 1 || s.Groups != 1 {
		t.Fatalf("stats %+v", s)
	}
	sm.mu.Lock()
	leaders := sm.leaders
	sm.mu.Unlock()
	if len(leaders) != 1 || leaders[0] != 1 {
		t.Fatalf("LeaderChanged calls %v, want [1]", leaders)
	}
	g.Close()
	errc := make(chan error, 1)
	g.ProposeAsync([]byte("late"), func(_ any, err error) { errc <- err })
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("proposal on a closed group: %v", err)
	}
	if h.Group(5) != nil {
		t.Fatal("closed group still listed")
	}
}

func TestProposalWithoutQuorumTimesOut(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	h := newTestHost(t, fc, &syncBuffer{})
	// Voter 2 never exists: no leader can be elected.
	g, err := h.Start(1, []NodeID{1, 2}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	g.ProposeAsync([]byte("x"), func(_ any, err error) { errc <- err })
	var got error
	tickUntil(t, fc, func() bool {
		select {
		case got = <-errc:
			return true
		default:
			return false
		}
	})
	if !errors.Is(got, ErrProposalTimeout) {
		t.Fatalf("proposal without quorum: %v, want ErrProposalTimeout", got)
	}
	if h.Stats().ProposalTimeouts != 1 {
		t.Fatalf("stats %+v", h.Stats())
	}
	// Propose honours its context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Propose(ctx, []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Propose with a cancelled context: %v", err)
	}
}

func TestUnknownGroupIsRefusedAndLoggedOnce(t *testing.T) {
	logs := &syncBuffer{}
	h := newTestHost(t, clock.NewFake(time.Unix(0, 0)), logs)
	m := &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: new(uint64(2)), To: new(uint64(1))}
	for range 3 {
		h.HandleRaft(2, 99, []*raftpb.Message{m})
	}
	if got := strings.Count(logs.String(), "does not host"); got != 1 {
		t.Fatalf("%d log lines for an unknown group, want 1:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "group=99") {
		t.Fatalf("log line does not name the group:\n%s", logs)
	}
	if s := h.Stats(); s.UnknownGroup != 3 {
		t.Fatalf("UnknownGroup = %d, want 3", s.UnknownGroup)
	}
}

type echoRequests struct{ notified chan []byte }

func (e echoRequests) HandleRequest(_ context.Context, from NodeID, kind uint8, body []byte) ([]byte, error) {
	return append([]byte{kind, byte(from)}, body...), nil
}
func (e echoRequests) HandleNotify(_ NodeID, _ uint8, body []byte) { e.notified <- body }

func TestRequestsDelegate(t *testing.T) {
	h := NewHost(HostConfig{ID: 1, Clock: clock.NewFake(time.Unix(0, 0))})
	defer h.Close()
	if _, err := h.HandleRequest(context.Background(), 2, 1, nil); !errors.Is(err, ErrNoRequests) {
		t.Fatalf("without Requests: %v", err)
	}
	h.HandleNotify(2, 1, []byte("dropped")) // no handler: nothing happens
	er := echoRequests{notified: make(chan []byte, 1)}
	h2 := NewHost(HostConfig{ID: 1, Clock: clock.NewFake(time.Unix(0, 0)), Requests: er})
	defer h2.Close()
	got, err := h2.HandleRequest(context.Background(), 2, 7, []byte("b"))
	if err != nil || !bytes.Equal(got, []byte{7, 2, 'b'}) {
		t.Fatalf("HandleRequest = %v, %v", got, err)
	}
	h2.HandleNotify(2, 1, []byte("n"))
	if b := <-er.notified; string(b) != "n" {
		t.Fatalf("notified %q", b)
	}
}

func TestDeleteRemovesStorage(t *testing.T) {
	st := NewMemoryStorage()
	h := NewHost(HostConfig{ID: 1, Clock: clock.NewFake(time.Unix(0, 0)), NewStorage: func(uint64) Storage { return st }})
	defer h.Close()
	g, err := h.Start(3, []NodeID{1}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	st.Save(&raftpb.HardState{Term: new(uint64(9))}, nil, nil, func(err error) { errc <- err })
	if err := <-errc; err == nil {
		t.Fatal("Save after Delete succeeded")
	}
}

// While a node starts, messages for groups it does not host yet are not a
// WARN per group (user7 4.2: one per queue at a join): one INFO line sums
// them up when the start is over, and an unknown group after that is a
// WARN again.
func TestUnknownGroupsWhileStartingAreSummedUp(t *testing.T) {
	logs := &syncBuffer{}
	h := newTestHost(t, clock.NewFake(time.Unix(0, 0)), logs)
	h.QuietUnknownGroups(true)
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: new(uint64(2)), To: new(uint64(1))}
	for g := range uint64(5) {
		h.HandleRaft(2, 100+g, []*raftpb.Message{m})
		h.HandleRaft(2, 100+g, []*raftpb.Message{m})
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("WARN while starting:\n%s", logs)
	}
	h.QuietUnknownGroups(false)
	if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "groups=5 messages=10") {
		t.Fatalf("no summary line after the start:\n%s", logs)
	}
	h.HandleRaft(2, 100, []*raftpb.Message{m})
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 {
		t.Fatalf("%d WARN lines for an unknown group after the start, want 1:\n%s", got, logs)
	}
	if s := h.Stats(); s.UnknownGroup != 11 {
		t.Fatalf("UnknownGroup = %d, want 11", s.UnknownGroup)
	}
}
