package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
)

// listSM records the payloads it applies.
type listSM struct {
	mu      sync.Mutex
	applied []string
}

func (s *listSM) Apply(_ uint64, d []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, string(d))
	return nil
}
func (s *listSM) Snapshot() ([]byte, error)  { return nil, nil }
func (s *listSM) Restore([]byte) error       { return nil }
func (s *listSM) LeaderChanged(uint64, bool) {}
func (s *listSM) has(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.applied, v)
}

// TestFailHandedRule: which waiting proposals a newly known leader fails.
func TestFailHandedRule(t *testing.T) {
	g := &Group{h: &Host{}, pending: map[uint64]*pending{}}
	var failed []uint64
	add := func(seq uint64, failFast bool, lead NodeID, term uint64) {
		p := &pending{proposal: proposal{seq: seq, failFast: failFast, done: func(_ any, err error) {
			if !errors.Is(err, ErrLeaderChanged) {
				t.Errorf("proposal %d failed with %v", seq, err)
			}
			failed = append(failed, seq)
		}}, handedLead: lead, handedTerm: term}
		g.pending[seq] = p
		g.expiry = append(g.expiry, expiring{seq: seq})
	}
	add(1, true, 0, 0)  // waiting to be resent (no leader when it was made)
	add(2, true, 7, 2)  // handed to 7 in term 2
	add(3, false, 7, 2) // plain ProposeAsync: waits for its timeout
	add(4, true, 7, 2)

	g.failHanded(7, 2) // the first leader known: the one they went to
	g.failHanded(0, 2) // a pre-vote blip: none known
	g.failHanded(7, 2) // the same leader, same term, again
	if len(failed) != 0 {
		t.Fatalf("the same leader in the same term failed %v", failed)
	}
	add(5, true, 0, 0) // made while 7 was not known: in g.retry
	g.failHanded(7, 3) // 7 again, but re-elected: what it had may be gone
	if !slices.Equal(failed, []uint64{2, 4}) {
		t.Fatalf("failed %v, want [2 4] (in proposal order; never the waiting 1 and 5, nor the plain 3)", failed)
	}
	if len(g.pending) != 3 || g.pending[1] == nil || g.pending[3] == nil || g.pending[5] == nil {
		t.Fatalf("pending after the change: %v", g.pending)
	}
}

// failFastHosts starts group 9 on three hosts of one memnet network (no
// quiescence, memory storage) and elects node 1.
func failFastHosts(t *testing.T, fc *clock.Fake) (*memnet.Network, map[NodeID]*Group, map[NodeID]*listSM) {
	return failFastHostsN(t, fc, 3)
}

func failFastHostsN(t *testing.T, fc *clock.Fake, n int) (*memnet.Network, map[NodeID]*Group, map[NodeID]*listSM) {
	t.Helper()
	net := memnet.New(fc, 1)
	groups, sms := map[NodeID]*Group{}, map[NodeID]*listSM{}
	var voters []NodeID
	for id := NodeID(1); id <= NodeID(n); id++ {
		voters = append(voters, id)
	}
	for id := NodeID(1); id <= NodeID(n); id++ {
		ep := net.Endpoint(id)
		h := NewHost(HostConfig{ID: id, Transport: ep, Clock: fc, DisableQuiesce: true,
			Logger:     slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
			NewStorage: func(uint64) Storage { return NewMemoryStorage() }})
		ep.SetHandler(h)
		t.Cleanup(h.Close)
		sms[id] = &listSM{}
		g, err := h.Start(9, voters, nil, sms[id])
		if err != nil {
			t.Fatal(err)
		}
		groups[id] = g
	}
	groups[1].Campaign()
	tickUntil(t, fc, func() bool {
		for _, g := range groups {
			if g.Leader() != 1 {
				return false
			}
		}
		return true
	})
	return net, groups, sms
}

// TestLeaderlessProposalIsNotFailedFast (review8 F0): a proposal made on a
// follower while no leader is known waits in the group and goes to the
// new leader; it must not fail with ErrLeaderChanged when that leader
// becomes known (it then commits: a publisher told "failed" would send
// it twice).
func TestLeaderlessProposalIsNotFailedFast(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net, groups, sms := failFastHosts(t, fc)

	net.Partition([]NodeID{1}, []NodeID{2}, []NodeID{3}) // every link cut
	// Node 1 steps down too (check-quorum): the next leader is in a new term.
	tickUntil(t, fc, func() bool { return groups[3].Leader() == 0 && groups[1].Leader() == 0 })
	res := make(chan error, 1)
	groups[3].ProposeAsyncFailFast([]byte("made while leaderless"), func(_ any, err error) { res <- err })
	net.Heal()
	tickUntil(t, fc, func() bool { return len(res) > 0 })
	if err := <-res; err != nil {
		t.Fatalf("a proposal made while no leader was known failed: %v (leader now %d)", err, groups[3].Leader())
	}
	if !sms[3].has("made while leaderless") {
		t.Fatal("completed without error but not applied")
	}
}

// TestTransferDroppedProposalsAreNotFailedFast (review8 F0b): proposals
// Raft drops on the leader while a leadership transfer is under way wait
// and go to the new leader; none may fail with ErrLeaderChanged.
func TestTransferDroppedProposalsAreNotFailedFast(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net, groups, sms := failFastHosts(t, fc)
	net.Delay(30*time.Millisecond, 30*time.Millisecond) // nothing arrives until the clock moves

	started := make(chan struct{})
	groups[1].submit(func() { groups[1].rn.TransferLeader(2); close(started) })
	<-started
	const n = 300
	res := make(chan [2]any, n)
	for i := range n {
		v := fmt.Sprintf("m%d", i)
		groups[1].ProposeAsyncFailFast([]byte(v), func(_ any, err error) { res <- [2]any{v, err} })
	}
	tickUntil(t, fc, func() bool { return len(res) == n })
	for range n {
		r := <-res
		if r[1] != nil {
			t.Fatalf("%s failed: %v (leader now %d)", r[0], r[1], groups[1].Leader())
		}
		if !sms[1].has(r[0].(string)) {
			t.Fatalf("%s completed but not applied", r[0])
		}
	}
	if l := groups[1].Leader(); l != 2 {
		t.Fatalf("leader %d, want 2 (the transfer did not happen: the test tested nothing)", l)
	}
}

// TestHandedProposalFailsFastOnAnotherLeader: a proposal the leader had
// appended but not committed when it was cut off fails with
// ErrLeaderChanged as soon as the node knows the new leader (not at the
// proposal timeout), and is not applied (the new leader never had it).
func TestHandedProposalFailsFastOnAnotherLeader(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net, groups, sms := failFastHosts(t, fc)

	net.Partition([]NodeID{1}, []NodeID{2, 3})
	res := make(chan error, 1)
	groups[1].ProposeAsyncFailFast([]byte("lost"), func(_ any, err error) { res <- err })
	tickUntil(t, fc, func() bool { l := groups[2].Leader(); return l == 2 || l == 3 })
	net.Heal()
	tickUntil(t, fc, func() bool { return len(res) > 0 })
	if err := <-res; !errors.Is(err, ErrLeaderChanged) {
		t.Fatalf("got %v, want ErrLeaderChanged (not the proposal timeout)", err)
	}
	if sms[1].has("lost") || sms[2].has("lost") {
		t.Fatal("the lost proposal was applied")
	}
}

// TestTransferKeepsTheLeadersPipeline: proposals the leader had appended
// but not committed when it hands leadership over (the node's rebalance
// does, under load) are in the transferee's log, which commits them: they
// must not fail with ErrLeaderChanged (a nack of a publish that is then
// enqueued), but complete when they apply. Five nodes, the leader's
// appends cut to three of them: its entries reach only the transferee,
// not a quorum, until the transferee leads and sends them on.
func TestTransferKeepsTheLeadersPipeline(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	net, groups, sms := failFastHostsN(t, fc, 5)
	for _, to := range []NodeID{3, 4, 5} {
		net.Cut(1, to)
	}
	g1 := groups[1]
	const n = 50
	res := make(chan [2]any, n)
	for i := range n {
		v := fmt.Sprintf("p%d", i)
		g1.ProposeAsyncFailFast([]byte(v), func(_ any, err error) { res <- [2]any{v, err} })
	}
	handed := func() int {
		c := make(chan int, 1)
		g1.submit(func() {
			k := 0
			for _, p := range g1.pending {
				if p.handedLead == 1 {
					k++
				}
			}
			c <- k
		})
		return <-c
	}
	if !waitUntil(5*time.Second, func() bool { return handed() == n }) {
		t.Fatalf("%d of %d proposals appended on the leader", handed(), n)
	}
	if len(res) > 0 {
		t.Fatalf("a proposal completed before the transfer: %v", <-res)
	}
	started := make(chan struct{})
	g1.submit(func() { g1.noteTransfer(2); g1.rn.TransferLeader(2); close(started) })
	<-started
	tickUntil(t, fc, func() bool { return len(res) == n })
	for range n {
		r := <-res
		if r[1] != nil {
			t.Fatalf("%s failed: %v (leader now %d)", r[0], r[1], g1.Leader())
		}
		if !sms[1].has(r[0].(string)) {
			t.Fatalf("%s completed but not applied", r[0])
		}
	}
	if l := g1.Leader(); l != 2 {
		t.Fatalf("leader %d, want 2 (the transfer did not happen: the test tested nothing)", l)
	}
}
