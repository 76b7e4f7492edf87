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
	w := watchedMachine{ReplicatedMachine: m, f: &f}
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
	w.LeaderChanged(0, false) // the leader is gone: b and early were forwarded to it
	if len(results) != 3 || !errors.Is(results[1], ErrLeaderChanged) || !errors.Is(results[2], ErrLeaderChanged) {
		t.Fatalf("results %v", results)
	}
	if _, ok := f.take(b); ok {
		t.Fatal("a failed proposal completed again")
	}
	if _, ok := f.take(early); ok {
		t.Fatal("a failed proposal completed again")
	}
	w.LeaderChanged(9, false) // none → a leader: nothing waiting fails
	c := f.add(record)
	w.LeaderChanged(9, false)
	if _, ok := f.take(c); !ok {
		t.Fatal("the same leader reported again failed a proposal")
	}
	if len(m.leaders) != 4 {
		t.Fatalf("the machine saw leaders %v", m.leaders)
	}
}
