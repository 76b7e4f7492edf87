package raftnode

import "go.etcd.io/raft/v3"

// Campaign asks this replica to stand for election now rather than after
// its election timeout (1-2 s by default). A group whose only voter is this
// node (internal/cluster/solo) elects itself at once, so its first
// proposals do not wait out a timeout at every start. Raft ignores it on a
// leader, a learner, or a replica that has entries left to apply; a
// replica that is not elected campaigns again by itself later. False if
// the group is closed.
func (g *Group) Campaign() bool {
	return g.submit(func() { _ = g.rn.Campaign() })
}

// CampaignFirst makes a new group's preferred leader stand for election
// at once, and again at each tick for up to an election timeout while no
// leader is known: the other replicas may not have opened the group yet
// when it first asks (their nodes create it as they apply the same
// metadata entry), and their own timers fire only after 1-2 s. So the
// group is led from the start by the node its placement prefers, instead
// of by whichever replica's timer fires first — which the node's
// rebalance then moves, under load, with a leadership transfer that fails
// the proposals in flight. Only for a group that has never had a leader:
// on a running group a campaign is at best useless. False if the group
// is closed.
func (g *Group) CampaignFirst() bool {
	return g.submit(func() {
		if g.lead != 0 || g.rn.BasicStatus().HardState.GetTerm() > bootstrapTerm {
			return
		}
		g.eager = g.h.cfg.ElectionTicks
		_ = g.rn.Campaign()
	})
}

// campaignAgain runs at a tick: CampaignFirst's retry. Not while this
// replica is a candidate: its pre-vote then won (a quorum hosts the group)
// and a vote round is under way, and etcd raft's Campaign on a candidate
// starts over as a pre-candidate, ignoring the votes of the round in
// flight and raising the term again (one more HardState fsync on every
// replica). Ticks run while the candidate's own save is pending
// (awaitSave), so with a fsync near a tick long that threw every round
// away (review8 F1). Raft's state is read from the RawNode: g.state is
// only updated at the next Ready. A pre-candidate campaigns again: its
// pre-vote requests may have reached nodes that did not host the group
// yet (the case CampaignFirst is for), and a pre-vote changes no term and
// loses nothing — responses to the earlier request count the same.
func (g *Group) campaignAgain() {
	if g.eager == 0 {
		return
	}
	if g.lead != 0 {
		g.eager = 0
		return
	}
	g.eager--
	if g.rn.BasicStatus().RaftState == raft.StateCandidate {
		return
	}
	_ = g.rn.Campaign()
}

// Wake has the group's goroutine take a turn now rather than at its next
// tick: a group just started from storage applies the entries its log
// had committed at once (no fsync is needed for those). False if the
// group is closed.
func (g *Group) Wake() bool {
	return g.submit(func() {})
}
