package raftnode

import (
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// Status is a group's state as this replica sees it, for /api/cluster.
// Leader, Term, Commit and Applied are current; the role, configuration,
// followers and liveness are as of the last tick or leader change.
type Status struct {
	Group    uint64
	ID       NodeID
	State    string // "leader", "follower", "candidate", "pre-candidate"
	Leader   NodeID // 0: none known
	Term     uint64
	Commit   uint64
	Applied  uint64
	Voters   []NodeID
	Learners []NodeID
	// Followers is filled on the leader only: every other member's
	// replication progress.
	Followers []FollowerStatus
	// Removed: this node is not in the group's configuration (removed, or
	// added but not yet caught up).
	Removed bool
	// Quiet: the group is quiescent (idle, not ticking).
	Quiet bool
}

// FollowerStatus is one follower's progress as the leader tracks it.
type FollowerStatus struct {
	ID      NodeID
	Learner bool
	Match   uint64 // highest index known replicated on it
	Lag     uint64 // leader's last index minus Match
	State   string // "probe", "replicate", "snapshot"
	Active  bool   // heard from within the last election timeout
}

var stateNames = map[raft.StateType]string{
	raft.StateFollower: "follower", raft.StateCandidate: "candidate",
	raft.StateLeader: "leader", raft.StatePreCandidate: "pre-candidate",
}

var progressNames = map[tracker.StateType]string{
	tracker.StateProbe: "probe", tracker.StateReplicate: "replicate", tracker.StateSnapshot: "snapshot",
}

// publishView refreshes the Status other goroutines read (on the group's
// goroutine: once per tick, and at leader and configuration changes).
func (g *Group) publishView() {
	me := g.h.cfg.ID
	bs := g.rn.BasicStatus()
	st := &Status{
		Group: g.id, ID: me, State: stateNames[bs.RaftState], Leader: bs.Lead,
		Voters:   slices.Clone(g.confState.GetVoters()),
		Learners: slices.Clone(g.confState.GetLearners()),
	}
	st.Removed = !slices.Contains(st.Voters, me) && !slices.Contains(st.Learners, me)
	if bs.RaftState == raft.StateLeader {
		var last uint64
		g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
			if id == me {
				last = pr.Match
			}
		})
		g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
			if id == me {
				return
			}
			f := FollowerStatus{ID: id, Learner: typ == raft.ProgressTypeLearner, Match: pr.Match,
				State: progressNames[pr.State], Active: pr.RecentActive}
			if last > pr.Match {
				f.Lag = last - pr.Match
			}
			st.Followers = append(st.Followers, f)
		})
		slices.SortFunc(st.Followers, func(a, b FollowerStatus) int { return int64cmp(a.ID, b.ID) })
	}
	g.view.Store(st)
}

func int64cmp(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Status returns the group's state as this replica sees it.
func (g *Group) Status() Status {
	st := *g.view.Load()
	st.Leader = NodeID(g.leader.Load())
	st.Term = g.term.Load()
	st.Commit = g.commit.Load()
	st.Applied = g.applIdx.Load()
	st.Quiet = g.quietPub.Load()
	return st
}

// Leader is the group's leader as this replica knows it (0: none).
func (g *Group) Leader() NodeID { return g.leader.Load() }

// IsLeader reports whether this replica leads the group.
func (g *Group) IsLeader() bool { return g.leader.Load() == g.h.cfg.ID }

// Live reports whether node is live: this Host heard from it (a message of
// any group, or the per-node heartbeat every tick) within the last election
// timeout, or this Host has not yet run that long. The answer is the
// same whatever this replica's role. It used to be Raft's RecentActive on
// a ticking leader, which a new leader starts with false for every
// follower and CheckQuorum resets every election timeout: a quorum queue's
// new leader (or any leader for a tick after CheckQuorum) took consumers
// on live nodes for dead and returned their unacked messages, which were
// then delivered twice (TestLiveSurvivesLeaderChangeAndCheckQuorum).
func (g *Group) Live(node NodeID) bool {
	return !g.h.NodeSilent(node)
}
