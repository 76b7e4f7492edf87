package cluster

import (
	"errors"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// ErrLeaderChanged completes a quorum queue proposal that was waiting when
// its group's leader went away: it may still commit (the old leader may
// have replicated it to the new one), as after raftnode's proposal
// timeout, but nobody waits the timeout out.
var ErrLeaderChanged = errors.New("cluster: the queue's leader changed before the proposal committed (it may still commit)")

// inflight fails a group's waiting proposals when its leader goes away.
// A follower forwards proposals to the leader; those the leader had not
// replicated when it died are lost, and raftnode reports them only after
// its proposal timeout (5 s). A publisher's confirms go out in publish
// order, so one lost proposal would hold back every later confirm for
// that long: failing them as soon as the loss is known makes a failover
// cost the publisher the election time, not the timeout.
type inflight struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]func(any, error)
	leader  uint64 // as last reported by the group
}

// add records done and returns its id.
func (f *inflight) add(done func(any, error)) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pending == nil {
		f.pending = map[uint64]func(any, error){}
	}
	f.next++
	f.pending[f.next] = done
	return f.next
}

// take removes id and returns its done, unless it was failed already.
func (f *inflight) take(id uint64) (func(any, error), bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	done, ok := f.pending[id]
	delete(f.pending, id)
	return done, ok
}

// leaderChanged takes every waiting proposal when a known leader is
// replaced (by none or another node). A change from none to a leader
// takes nothing: proposals made while no leader was known wait in
// raftnode for the new one.
func (f *inflight) leaderChanged(leader uint64) []func(any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.leader
	f.leader = leader
	if old == 0 || old == leader || len(f.pending) == 0 {
		return nil
	}
	out := make([]func(any, error), 0, len(f.pending))
	for id, done := range f.pending {
		out = append(out, done)
		delete(f.pending, id)
	}
	return out
}

// watchedMachine is a quorum queue's machine with its leader changes
// seen by the group's inflight first.
type watchedMachine struct {
	broker.ReplicatedMachine
	f *inflight
}

// AppendSnapshot implements raftnode.SnapshotAppender when the machine
// can append its snapshot (the broker's quorum queues do).
func (w watchedMachine) AppendSnapshot(dst []byte) ([]byte, error) {
	if a, ok := w.ReplicatedMachine.(raftnode.SnapshotAppender); ok {
		return a.AppendSnapshot(dst)
	}
	data, err := w.Snapshot()
	return append(dst, data...), err
}

func (w watchedMachine) LeaderChanged(leader uint64, isLocal bool) {
	for _, done := range w.f.leaderChanged(leader) {
		done(nil, ErrLeaderChanged)
	}
	w.ReplicatedMachine.LeaderChanged(leader, isLocal)
}
