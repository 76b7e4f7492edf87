package cluster

import (
	"errors"
	"testing"
)

type nopMachine struct{ leaders []uint64 }

func (*nopMachine) Apply(uint64, []byte) any                  { return nil }
func (*nopMachine) Snapshot() ([]byte, error)                 { return nil, nil }
func (*nopMachine) Restore([]byte) error                      { return nil }
func (m *nopMachine) LeaderChanged(leader uint64, local bool) { m.leaders = append(m.leaders, leader) }

func TestInflightFailsWaitingProposalsWhenTheLeaderGoes(t *testing.T) {
	var f inflight
	m := &nopMachine{}
	term := uint64(2)
	w := watchedMachine{ReplicatedMachine: m, f: &f, term: func() uint64 { return term }}
	var results []error
	record := func(_ any, err error) { results = append(results, err) }

	early := f.add(record) // proposed while no leader is known
	w.LeaderChanged(7, false)
	if len(results) != 0 {
		t.Fatalf("a leader appearing failed %v", results)
	}
	a, b := f.add(record), f.add(record)
	if done, ok := f.take(a); !ok {
		t.Fatal("a waiting proposal was gone")
	} else {
		done("applied", nil)
	}
	// A pre-vote that fails: the leader unknown for a moment, then the
	// same leader in the same term. What was forwarded to it commits.
	w.LeaderChanged(0, false)
	w.LeaderChanged(7, false)
	if len(results) != 1 {
		t.Fatalf("the same leader in the same term failed proposals: %v", results)
	}
	// The leader is gone and another is elected: b and early were
	// forwarded to the old one and may be lost.
	w.LeaderChanged(0, false)
	term = 3
	w.LeaderChanged(9, false)
	if len(results) != 3 || !errors.Is(results[1], ErrLeaderChanged) || !errors.Is(results[2], ErrLeaderChanged) {
		t.Fatalf("results %v", results)
	}
	if _, ok := f.take(b); ok {
		t.Fatal("a failed proposal completed again")
	}
	if _, ok := f.take(early); ok {
		t.Fatal("a failed proposal completed again")
	}
	c := f.add(record)
	w.LeaderChanged(9, false)
	if _, ok := f.take(c); !ok {
		t.Fatal("the same leader reported again failed a proposal")
	}
	// The same node elected again in a later term (it stepped down
	// meanwhile and dropped what was forwarded to it as a follower).
	d := f.add(record)
	term = 4
	w.LeaderChanged(0, false)
	w.LeaderChanged(9, false)
	if _, ok := f.take(d); ok || len(results) != 4 || !errors.Is(results[3], ErrLeaderChanged) {
		t.Fatalf("the same leader in a later term failed nothing: %v", results)
	}
	if len(m.leaders) != 8 {
		t.Fatalf("the machine saw leaders %v", m.leaders)
	}
}
