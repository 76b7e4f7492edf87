package raftnode

import (
	"sync/atomic"
	"time"
)

// CommitLatencyBounds are the upper bounds of Stats.CommitLatency's
// buckets: the time from a proposal to its apply on the proposing node.
var CommitLatencyBounds = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Stats are a Host's counters since NewHost, summed over its groups: what
// the node exports as tern_raft_* metrics (this package imports no metrics
// library).
type Stats struct {
	Groups   int    // running now
	Quiet    int    // of which quiescent (not ticking)
	Quiesced uint64 // times a leader quiesced its group

	Elections     uint64 // campaigns this node started (became candidate)
	PreVotes      uint64 // pre-vote campaigns started
	LeaderChanges uint64 // a group's known leader changed to another node (or none)
	BecameLeader  uint64 // this node became a group's leader

	Proposals        uint64 // ProposeAsync calls and membership changes
	ProposalTimeouts uint64 // failed with ErrProposalTimeout
	// ProposalsLeaderChanged failed with ErrLeaderChanged (ProposeAsyncFailFast).
	ProposalsLeaderChanged uint64
	Applied                uint64 // normal entries applied (each proposal of a batch entry counts)
	Batched                uint64 // proposals this node sent in batch entries of several
	ConfChanges            uint64 // configuration changes applied

	SnapshotsCreated  uint64
	SnapshotsRestored uint64 // from a leader's MsgSnap
	SnapshotsSent     uint64

	MessagesSent     uint64 // Raft messages handed to the transport
	MessagesReceived uint64
	InboxDropped     uint64 // received while the group's inbox was full
	ProposalsBusy    uint64 // refused with ErrBusy: the group's proposal inbox was full
	TicksDropped     uint64 // ticks a group that fell behind did not run (maxTickBurst)
	UnknownGroup     uint64 // received for a group this node does not host

	// CommitLatency is the histogram of proposal → apply on the proposing
	// node, measured on the monotonic wall clock (not HostConfig.Clock: a
	// fake clock would read zero). Cumulative[i] counts latencies ≤
	// CommitLatencyBounds[i] (Prometheus "le" buckets); Count includes
	// those above the last bound.
	CommitLatency LatencyStats
}

// LatencyStats is a histogram with cumulative buckets.
type LatencyStats struct {
	Cumulative []uint64
	Count      uint64
	Sum        time.Duration
}

type hostStats struct {
	elections, preVotes, leaderChanges, becameLeader   atomic.Uint64
	proposals, proposalTimeouts, applied, confChanges  atomic.Uint64
	snapsCreated, snapsRestored, snapsSent             atomic.Uint64
	msgsSent, msgsReceived, inboxDropped, unknownGroup atomic.Uint64
	quiesced, batched, proposalsBusy, ticksDropped     atomic.Uint64
	proposalsLeaderChanged                             atomic.Uint64
	latBuckets                                         []atomic.Uint64 // len(bounds)+1, not cumulative
	latSum                                             atomic.Int64
}

func (s *hostStats) init() {
	s.latBuckets = make([]atomic.Uint64, len(CommitLatencyBounds)+1)
}

func (s *hostStats) observeCommit(d time.Duration) {
	i := 0
	for i < len(CommitLatencyBounds) && d > CommitLatencyBounds[i] {
		i++
	}
	s.latBuckets[i].Add(1)
	s.latSum.Add(int64(d))
}

// Stats returns the Host's counters.
func (h *Host) Stats() Stats {
	s := &h.stats
	st := Stats{
		Elections: s.elections.Load(), PreVotes: s.preVotes.Load(),
		LeaderChanges: s.leaderChanges.Load(), BecameLeader: s.becameLeader.Load(),
		Proposals: s.proposals.Load(), ProposalTimeouts: s.proposalTimeouts.Load(),
		Applied: s.applied.Load(), Batched: s.batched.Load(), ConfChanges: s.confChanges.Load(),
		SnapshotsCreated: s.snapsCreated.Load(), SnapshotsRestored: s.snapsRestored.Load(),
		SnapshotsSent: s.snapsSent.Load(),
		MessagesSent:  s.msgsSent.Load(), MessagesReceived: s.msgsReceived.Load(),
		InboxDropped: s.inboxDropped.Load(), UnknownGroup: s.unknownGroup.Load(),
		ProposalsBusy: s.proposalsBusy.Load(), TicksDropped: s.ticksDropped.Load(),
		ProposalsLeaderChanged: s.proposalsLeaderChanged.Load(),
	}
	var cum uint64
	st.CommitLatency.Cumulative = make([]uint64, len(CommitLatencyBounds))
	for i := range s.latBuckets {
		cum += s.latBuckets[i].Load()
		if i < len(CommitLatencyBounds) {
			st.CommitLatency.Cumulative[i] = cum
		}
	}
	st.CommitLatency.Count = cum
	st.CommitLatency.Sum = time.Duration(s.latSum.Load())
	st.Quiesced = s.quiesced.Load()
	h.mu.RLock()
	st.Groups = len(h.groups)
	for _, g := range h.groups {
		if g.quietPub.Load() {
			st.Quiet++
		}
	}
	h.mu.RUnlock()
	return st
}
