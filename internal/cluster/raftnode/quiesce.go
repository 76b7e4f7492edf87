package raftnode

import (
	"bytes"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// Quiescence: a group with nothing to do stops ticking, so 1,000 idle
// groups send no heartbeats and run no election timers. The leader of a
// group that has been idle for QuiesceTicks, with every follower active
// and holding the whole committed log, sends each follower a heartbeat
// marked quiesceContext and stops ticking; a follower that receives it
// with nothing left to apply stops ticking too. Any other message, a
// proposal or a control call wakes a group (heartbeat responses do not:
// the leader's last heartbeats' answers would wake it at once).
//
// A quiet follower still needs to notice its leader dying: the Host sends
// each peer one node heartbeat per tick (on the reserved group
// NodeHeartbeatGroup, whatever the number of groups) and records when it
// last heard from each node; a quiet follower whose leader's node has
// been silent for an election timeout wakes up and, ticking again, starts
// an election as Raft would. Quiescence changes only when ticks run, never
// what Raft decides, so it cannot break safety; a lost quiesce heartbeat
// or a spurious wake-up costs a few messages.

// NodeHeartbeatGroup is the group id the Host's node heartbeats travel
// on; no Raft group may use it.
const NodeHeartbeatGroup = ^uint64(0)

// quiesceContext marks the leader's last heartbeat before it goes quiet.
var quiesceContext = []byte("tern-quiesce")

func isQuiesce(m *raftpb.Message) bool {
	return (m.GetType() == raftpb.MsgHeartbeat || m.GetType() == raftpb.MsgHeartbeatResp) &&
		bytes.Equal(m.GetContext(), quiesceContext)
}

// liveness records when this Host last heard from each node, in Host ticks.
type liveness struct {
	now   atomic.Uint64 // Host ticks so far
	mu    sync.RWMutex
	heard map[NodeID]*atomic.Uint64
}

func (l *liveness) saw(node NodeID) {
	l.mu.RLock()
	at := l.heard[node]
	l.mu.RUnlock()
	if at == nil {
		l.mu.Lock()
		if at = l.heard[node]; at == nil {
			at = new(atomic.Uint64)
			l.heard[node] = at
		}
		l.mu.Unlock()
	}
	at.Store(l.now.Load())
}

// live reports whether node was heard from within window ticks.
func (l *liveness) live(node NodeID, window uint64) bool {
	l.mu.RLock()
	at := l.heard[node]
	l.mu.RUnlock()
	return at != nil && l.now.Load()-at.Load() <= window
}

// silent reports whether node has not been heard from for longer than
// window ticks: heard from and silent since, or never heard from by a Host
// that has run longer than window (a Host that has just started has not
// had the time to hear from anyone, which condemns no one).
func (l *liveness) silent(node NodeID, window uint64) bool {
	l.mu.RLock()
	at := l.heard[node]
	l.mu.RUnlock()
	now := l.now.Load()
	if at == nil {
		return now > window
	}
	return now-at.Load() > window
}

// NodeLive reports whether this Host heard from node (any group's
// message or a node heartbeat) within the last election timeout.
func (h *Host) NodeLive(node NodeID) bool {
	return node == h.cfg.ID || h.live.live(node, uint64(h.cfg.ElectionTicks))
}

// NodeSilent reports whether this Host has not heard from node for an
// election timeout (see liveness.silent); never for itself.
func (h *Host) NodeSilent(node NodeID) bool {
	return node != h.cfg.ID && h.live.silent(node, uint64(h.cfg.ElectionTicks))
}

// sendNodeHeartbeats sends one node heartbeat to each peer of this Host's
// groups. Called from tick with h.mu read-locked.
func (h *Host) sendNodeHeartbeats() {
	if h.cfg.DisableQuiesce || h.cfg.Transport == nil {
		return
	}
	peers := map[NodeID]struct{}{}
	for _, g := range h.groups {
		v := g.view.Load()
		for _, id := range v.Voters {
			peers[id] = struct{}{}
		}
		for _, id := range v.Learners {
			peers[id] = struct{}{}
		}
	}
	delete(peers, h.cfg.ID)
	for id := range peers {
		h.cfg.Transport.SendRaft(id, NodeHeartbeatGroup, []*raftpb.Message{{
			Type: raftpb.MsgHeartbeat.Enum(), From: new(h.cfg.ID), To: new(id),
		}})
	}
}

// wakes reports whether an incoming message wakes a quiet group.
func wakes(m *raftpb.Message) bool {
	return m.GetType() != raftpb.MsgHeartbeatResp && !isQuiesce(m)
}

// unquiesce makes the group tick again.
func (g *Group) unquiesce() {
	if g.quiet {
		g.quiet = false
		g.idle = 0
		g.quietPub.Store(false)
	}
}

// quietHolds reports whether a quiet group may stay asleep through this
// tick: a follower while its leader's node is heard from, a leader while
// every other member's node is (else it wakes, and Raft's CheckQuorum or
// heartbeats deal with the missing member).
func (h *Host) quietHolds(g *Group) bool {
	l := g.leader.Load()
	if l != h.cfg.ID {
		return h.NodeLive(l)
	}
	v := g.view.Load()
	for _, id := range v.Voters {
		if !h.NodeLive(id) {
			return false
		}
	}
	for _, id := range v.Learners {
		if !h.NodeLive(id) {
			return false
		}
	}
	return true
}

// tickQuiet decides, at a tick, whether a quiet group stays quiet.
func (g *Group) tickQuiet() bool {
	if !g.quiet {
		return false
	}
	if !g.h.quietHolds(g) {
		g.log.Debug("raft group wakes: a node it depends on is silent", "leader", g.lead)
		g.unquiesce()
		return false
	}
	return true
}

// noteIdle counts ticks without log progress on the leader.
func (g *Group) noteIdle(ticks uint64) {
	bs := g.rn.BasicStatus()
	if bs.RaftState != raft.StateLeader {
		g.idle = 0
		return
	}
	if c := bs.HardState.GetCommit(); c != g.idleCommit {
		g.idleCommit, g.idle = c, 0
		return
	}
	g.idle += ticks
}

// maybeQuiesce runs after the Ready loop: a leader idle long enough with
// everyone caught up sends the quiesce heartbeats and goes quiet; a
// follower that got one and has applied everything goes quiet.
func (g *Group) maybeQuiesce() {
	cfg := &g.h.cfg
	// A group with proposals waiting never goes quiet: their timeouts
	// run on ticks, and a proposal must fail rather than hang.
	if cfg.DisableQuiesce || g.quiet || g.rn.HasReady() || len(g.pending) > 0 || len(g.retry) > 0 {
		g.quiesceAsked = false
		return
	}
	bs := g.rn.BasicStatus()
	commit := bs.HardState.GetCommit()
	if g.quiesceAsked {
		g.quiesceAsked = false
		last, err := g.storage.LastIndex()
		if bs.RaftState == raft.StateFollower && bs.Lead == g.quiesceFrom && bs.HardState.GetTerm() == g.quiesceTerm &&
			bs.Applied == commit && err == nil && last == commit {
			g.quiet = true
			g.quietPub.Store(true)
		}
		return
	}
	if bs.RaftState != raft.StateLeader || g.idle < uint64(cfg.QuiesceTicks) || bs.LeadTransferee != 0 ||
		bs.Applied != commit {
		return
	}
	me := cfg.ID
	ok := true
	var followers []NodeID
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if pr.Match != commit || (id != me && (pr.State != tracker.StateReplicate || !pr.RecentActive)) {
			ok = false
		}
		if id != me {
			followers = append(followers, id)
		}
	})
	if !ok {
		return
	}
	term := bs.HardState.GetTerm()
	for _, id := range followers {
		cfg.Transport.SendRaft(id, g.id, []*raftpb.Message{{
			Type: raftpb.MsgHeartbeat.Enum(), From: new(me), To: new(id),
			Term: new(term), Commit: new(commit), Context: quiesceContext,
		}})
	}
	g.h.stats.quiesced.Add(1)
	g.quiet = true
	g.quietPub.Store(true)
	// Status is published at ticks, and a quiet group has none: publish
	// what the leader knows now. A leader idle for long goes quiet in the
	// round in which a restarted follower catches up, and would otherwise
	// show it lagging in "probe" until the next write (the node's
	// rebalance reads this and would not hand leadership back).
	g.publishView()
}
