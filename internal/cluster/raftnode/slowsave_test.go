package raftnode

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// gatedStorage is a MemoryStorage whose saves can be held, as a WAL's are
// while its fsync hangs: a held save completes (and its entries appear)
// only at release.
type gatedStorage struct {
	*MemoryStorage
	mu   sync.Mutex
	hold bool
	held []func()
}

func (s *gatedStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) {
	s.mu.Lock()
	if s.hold {
		s.held = append(s.held, func() { done(s.save(hs, ents, snap)) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	done(s.save(hs, ents, snap))
}

func (s *gatedStorage) setHold() { s.mu.Lock(); s.hold = true; s.mu.Unlock() }

func (s *gatedStorage) waiting() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.held) }

func (s *gatedStorage) release() {
	s.mu.Lock()
	held := s.held
	s.held, s.hold = nil, false
	s.mu.Unlock()
	for _, f := range held {
		f()
	}
}

// gatedHosts starts n Hosts on one memnet, each group's storage gated.
func gatedHosts(t *testing.T, fc *clock.Fake, n int, tweak func(*HostConfig)) (map[NodeID]*Host, map[NodeID]*gatedStorage) {
	t.Helper()
	net := memnet.New(fc, 1)
	hosts, stores := map[NodeID]*Host{}, map[NodeID]*gatedStorage{}
	for id := NodeID(1); id <= NodeID(n); id++ {
		ep := net.Endpoint(id)
		st := &gatedStorage{MemoryStorage: NewMemoryStorage()} // one group per host in these tests
		cfg := HostConfig{
			ID: id, Transport: ep, Clock: fc,
			Logger:     slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			NewStorage: func(uint64) Storage { return st },
		}
		if tweak != nil {
			tweak(&cfg)
		}
		h := NewHost(cfg)
		ep.SetHandler(h)
		t.Cleanup(h.Close)
		hosts[id], stores[id] = h, st
	}
	return hosts, stores
}

// waitUntil polls cond for up to d (real time); it reports whether it held.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
	return true
}

// caughtUpInbox: the group's goroutine has taken every message and tick
// given to it so far.
func caughtUpInbox(g *Group) bool {
	g.mu.Lock()
	n := len(g.msgs)
	g.mu.Unlock()
	return n == 0 && g.ticks.Load() == 0
}

// TestFollowerWithHungSaveKeepsItsLeader: a follower whose WAL save hangs
// for three election timeouts while its leader keeps sending heartbeats
// must not campaign (nor forget its leader) once the save completes.
// Regression: the group's goroutine waited for the save without stepping
// messages; the heartbeats and ticks piled up, and when the save returned
// it stepped the heartbeats first and then ran twenty ticks at once — an
// election timeout past the last heartbeat — and stood for election: its
// leader became "none" (the cluster fails every proposal in flight on
// that) with no node failing. Now the goroutine steps messages and runs
// ticks while it waits, and a burst never reaches an election timeout.
func TestFollowerWithHungSaveKeepsItsLeader(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	hosts, stores := gatedHosts(t, fc, 3, nil)
	sms := map[NodeID]*countSM{}
	groups := map[NodeID]*Group{}
	for id, h := range hosts {
		sms[id] = &countSM{}
		g, err := h.Start(9, []NodeID{1, 2, 3}, nil, sms[id])
		if err != nil {
			t.Fatal(err)
		}
		groups[id] = g
	}
	groups[1].CampaignFirst()
	tickUntil(t, fc, func() bool {
		return groups[1].IsLeader() && groups[2].Status().Leader == 1 && groups[3].Status().Leader == 1
	})
	term := groups[1].Status().Term

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stores[2].setHold()
	if _, err := groups[1].Propose(ctx, []byte("while 2 hangs")); err != nil {
		t.Fatal(err) // committed by 1 and 3
	}
	tickUntil(t, fc, func() bool { return stores[2].waiting() > 0 })
	st2 := hosts[2].Stats()
	sms[2].mu.Lock()
	leaders := slices.Clone(sms[2].leaders)
	sms[2].mu.Unlock()

	for range 3 * 10 { // three election timeouts, the leader heartbeating at each tick
		fc.Advance(100 * time.Millisecond)
		// Give node 2 the chance to step this tick's heartbeat before the
		// next tick (it cannot while blocked in the save: then this only
		// waits the bound out).
		waitUntil(50*time.Millisecond, func() bool { return caughtUpInbox(groups[2]) })
	}
	stores[2].release()
	if _, err := groups[1].Propose(ctx, []byte("after")); err != nil {
		t.Fatal(err)
	}
	want := groups[1].Status().Applied
	tickUntil(t, fc, func() bool { return groups[2].Status().Applied >= want })

	after := hosts[2].Stats()
	sms[2].mu.Lock()
	leadersAfter := slices.Clone(sms[2].leaders)
	sms[2].mu.Unlock()
	if after.PreVotes != st2.PreVotes || after.Elections != st2.Elections {
		t.Errorf("node 2 campaigned after its save hung: pre-votes %d → %d, elections %d → %d",
			st2.PreVotes, after.PreVotes, st2.Elections, after.Elections)
	}
	if !slices.Equal(leaders, leadersAfter) {
		t.Errorf("node 2's leader changed: %v → %v", leaders, leadersAfter)
	}
	if s := groups[1].Status(); s.Leader != 1 || s.Term != term {
		t.Errorf("leader %d term %d after the hang, want 1 and %d", s.Leader, s.Term, term)
	}
}

// TestCampaignFirstLeadsFromTheStart: the preferred leader of a new group
// that campaigns before the other replicas have created the group is
// still the one elected (it campaigns again at the next tick), well
// before their own election timers fire.
func TestCampaignFirstLeadsFromTheStart(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	hosts, _ := gatedHosts(t, fc, 3, nil)
	g3, err := hosts[3].Start(9, []NodeID{1, 2, 3}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	g3.CampaignFirst() // 1 and 2 do not host the group yet: the votes are refused
	waitUntil(time.Second, func() bool { return hosts[1].Stats().UnknownGroup > 0 && hosts[2].Stats().UnknownGroup > 0 })
	for _, id := range []NodeID{1, 2} {
		if _, err := hosts[id].Start(9, []NodeID{1, 2, 3}, nil, &countSM{}); err != nil {
			t.Fatal(err)
		}
	}
	ticks := 0
	tickUntil(t, fc, func() bool {
		if g3.Status().Leader != 0 {
			return true
		}
		ticks++
		return false
	})
	if l := g3.Status().Leader; l != 3 {
		t.Fatalf("leader %d, want the node that campaigned first (3)", l)
	}
	if ticks >= 10 {
		t.Fatalf("elected after %d ticks: no sooner than an election timeout", ticks)
	}
}

// TestProposalInboxIsBounded (review5 A7): while a group's save hangs,
// proposals beyond MaxQueuedProposalBytes are refused at once with
// ErrBusy instead of queueing without bound; the ones queued time out
// after ProposalTimeout although the goroutine is still waiting; after
// the disk returns the group proposes again.
func TestProposalInboxIsBounded(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	hosts, stores := gatedHosts(t, fc, 1, func(c *HostConfig) { c.MaxQueuedProposalBytes = 1000 })
	g, err := hosts[1].Start(9, []NodeID{1}, nil, &countSM{})
	if err != nil {
		t.Fatal(err)
	}
	g.CampaignFirst()
	tickUntil(t, fc, g.IsLeader)

	stores[1].setHold()
	first := make(chan error, 1)
	g.ProposeAsync([]byte("first"), func(_ any, err error) { first <- err })
	tickUntil(t, fc, func() bool { return stores[1].waiting() > 0 }) // the goroutine waits on the save

	results := make(chan error, 100)
	for range 100 {
		g.ProposeAsync(make([]byte, 100), func(_ any, err error) { results <- err })
	}
	busy := 0
	for busy < 90 {
		select {
		case err := <-results:
			if !errors.Is(err, ErrBusy) {
				t.Fatalf("a proposal beyond the bound ended with %v, want ErrBusy", err)
			}
			busy++
		case <-time.After(10 * time.Second):
			t.Fatalf("%d proposals refused with ErrBusy, want at least 90 of 100 (1000 bytes queued at most)", busy)
		}
	}
	if s := hosts[1].Stats(); s.ProposalsBusy < 90 {
		t.Fatalf("ProposalsBusy %d", s.ProposalsBusy)
	}
	// The queued ones time out while the save still hangs (5 s = 50 ticks).
	for range 60 {
		fc.Advance(100 * time.Millisecond)
	}
	for busy < 100 {
		select {
		case err := <-results:
			if !errors.Is(err, ErrProposalTimeout) && !errors.Is(err, ErrBusy) {
				t.Fatalf("a queued proposal ended with %v while the save hung, want ErrProposalTimeout", err)
			}
			busy++
		case <-time.After(10 * time.Second):
			t.Fatalf("queued proposals still waiting after the proposal timeout: %d of 100 answered", busy)
		}
	}
	select {
	case err := <-first:
		if !errors.Is(err, ErrProposalTimeout) {
			t.Fatalf("the proposal in Raft ended with %v, want ErrProposalTimeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the proposal in Raft did not time out while the save hung")
	}

	stores[1].release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := g.Propose(ctx, []byte("after")); done <- err }()
	tickUntil(t, fc, func() bool { return len(done) > 0 })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
