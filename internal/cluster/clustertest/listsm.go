package clustertest

import (
	"encoding/json"
	"slices"
	"sync"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// Item is one applied entry of a ListSM.
type Item struct {
	Index uint64 // the Raft index it was applied at
	Value string
}

// ListSM is the test state machine: an append-only list of every applied
// value with its Raft index. Apply returns the value's position (1-based).
// Safe for the test to read while the group applies.
type ListSM struct {
	mu      sync.Mutex
	items   []Item
	leader  raftnode.NodeID
	onLead  func(leader raftnode.NodeID, local bool)
	applied uint64
}

// Apply implements raftnode.StateMachine.
func (s *ListSM) Apply(index uint64, data []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, Item{index, string(data)})
	s.applied = index
	return len(s.items)
}

// snapshotState is ListSM's snapshot encoding (JSON: the test's own
// format, decoded only from snapshots it wrote).
type snapshotState struct {
	Items []Item
}

// Snapshot implements raftnode.StateMachine.
func (s *ListSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(snapshotState{Items: s.items})
}

// Restore implements raftnode.StateMachine.
func (s *ListSM) Restore(data []byte) error {
	var st snapshotState
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = st.Items
	if n := len(st.Items); n > 0 {
		s.applied = st.Items[n-1].Index
	}
	return nil
}

// LeaderChanged implements raftnode.StateMachine.
func (s *ListSM) LeaderChanged(leader uint64, isLocal bool) {
	s.mu.Lock()
	s.leader = leader
	f := s.onLead
	s.mu.Unlock()
	if f != nil {
		f(leader, isLocal)
	}
}

// Items returns a copy of the applied list.
func (s *ListSM) Items() []Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.items)
}

// Values returns the applied values in order.
func (s *ListSM) Values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := make([]string, len(s.items))
	for i, it := range s.items {
		vs[i] = it.Value
	}
	return vs
}

// Contains reports whether every value in vs was applied.
func (s *ListSM) Contains(vs []string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	have := make(map[string]bool, len(s.items))
	for _, it := range s.items {
		have[it.Value] = true
	}
	for _, v := range vs {
		if !have[v] {
			return false
		}
	}
	return true
}
