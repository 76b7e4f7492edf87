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
//
// The loss is known when another leader — a different node, or the same
// node in a later term — becomes known, not when the leader merely
// becomes unknown: a follower whose election timer fired stands for
// election (pre-vote) and forgets its leader, and when the pre-vote fails
// because the leader is in fact alive it follows the same leader in the
// same term again; its proposals reached that leader and commit, and
// failing them nacked publishes that were enqueued (measured: hundreds
// per benchmark run under load, with no node failing). While no leader
// is known, new proposals wait in raftnode for one; a node cut off for
// good fails its proposals at the proposal timeout.
type inflight struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]func(any, error)
	leader  uint64 // the last leader known (never 0 once one was)
	term    uint64 // its term, 0 when not known
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

// leaderChanged takes every waiting proposal when a leader becomes known
// that is not the last one known: another node, or the same in another
// term (term 0: not known, which counts as another term). A change to
// none takes nothing, nor does the first leader known.
func (f *inflight) leaderChanged(leader, term uint64) []func(any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if leader == 0 {
		return nil
	}
	oldLeader, oldTerm := f.leader, f.term
	f.leader, f.term = leader, term
	if oldLeader == 0 || (oldLeader == leader && term != 0 && term == oldTerm) || len(f.pending) == 0 {
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
// seen by the group's inflight first. term reads the group's current
// term (0 while it is not known).
type watchedMachine struct {
	broker.ReplicatedMachine
	f    *inflight
	term func() uint64
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
	var term uint64
	if w.term != nil {
		term = w.term()
	}
	for _, done := range w.f.leaderChanged(leader, term) {
		done(nil, ErrLeaderChanged)
	}
	w.ReplicatedMachine.LeaderChanged(leader, isLocal)
}
