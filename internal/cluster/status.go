package cluster

import (
	"fmt"
	"slices"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/cluster/wal"
)

// Status is GET /api/cluster's document: the nodes and every group as
// this node sees them.
type Status struct {
	Node   string        `json:"node"`
	Nodes  []NodeStatus  `json:"nodes"`
	Groups []GroupStatus `json:"groups"`
}

// NodeStatus is one member of the cluster.
type NodeStatus struct {
	Name    string `json:"name"`
	ID      string `json:"id"` // the Raft replica id, in hex
	Address string `json:"address"`
	// Role is the node's role in the metadata group's configuration:
	// "voter" or "standby" (a learner), "joining" (added, not yet in
	// the metadata group) or "removed" (tombstoned).
	Role string `json:"role"`
	Self bool   `json:"self,omitempty"`
	// Reachable: this node has an authenticated connection to it (always
	// true for itself).
	Reachable bool `json:"reachable"`
}

// GroupStatus is one Raft group as this replica sees it.
type GroupStatus struct {
	ID    string `json:"id"`   // hex
	Kind  string `json:"kind"` // "metadata" or "quorum"
	VHost string `json:"vhost,omitempty"`
	Queue string `json:"queue,omitempty"`
	// State is this replica's role: leader, follower, candidate,
	// pre-candidate.
	State    string   `json:"state"`
	Leader   string   `json:"leader"` // "" when none is known
	Term     uint64   `json:"term"`
	Commit   uint64   `json:"commit"`
	Applied  uint64   `json:"applied"`
	Voters   []string `json:"voters"`
	Learners []string `json:"learners"`
	// Followers is known on the leader only (see the leader's own
	// /api/cluster): each follower's replication progress.
	Followers []FollowerStatus `json:"followers,omitempty"`
}

// FollowerStatus is a follower's progress as its leader tracks it.
type FollowerStatus struct {
	Node    string `json:"node"`
	Match   uint64 `json:"match"`
	Lag     uint64 `json:"lag"`
	State   string `json:"state"` // probe, replicate, snapshot
	Active  bool   `json:"active"`
	Learner bool   `json:"learner,omitempty"`
}

// Status returns the cluster as this node sees it.
func (n *Node) Status() Status {
	out := Status{Node: n.cfg.Self.Name}
	ts := n.tr.Stats()
	var metaSt *raftnode.Status
	if g := n.meta.Load(); g != nil {
		st := g.Status()
		metaSt = &st
	}
	for _, m := range n.members() {
		ns := NodeStatus{Name: m.Name, ID: fmt.Sprintf("%#x", m.ID), Address: m.Addr, Self: m.ID == n.cfg.Self.ID}
		ns.Reachable = ns.Self || ts.Peers[m.ID].Connected
		switch {
		case metaSt == nil && m.Standby, metaSt != nil && slices.Contains(metaSt.Learners, m.ID):
			ns.Role = "standby"
		case metaSt == nil, slices.Contains(metaSt.Voters, m.ID):
			ns.Role = "voter"
		default:
			ns.Role = "joining" // a member not yet in the metadata group
		}
		out.Nodes = append(out.Nodes, ns)
	}
	out.Nodes = append(out.Nodes, n.removedStatus()...)
	if metaSt != nil {
		out.Groups = append(out.Groups, n.groupStatus(*metaSt, "metadata", "", ""))
	}
	n.mu.Lock()
	queues := make([]queueGroup, 0, len(n.queues))
	for _, q := range n.queues {
		queues = append(queues, q)
	}
	n.mu.Unlock()
	slices.SortFunc(queues, func(a, b queueGroup) int {
		if a.vhost != b.vhost {
			return cmpString(a.vhost, b.vhost)
		}
		return cmpString(a.name, b.name)
	})
	for _, q := range queues {
		out.Groups = append(out.Groups, n.groupStatus(q.g.Status(), "quorum", q.vhost, q.name))
	}
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (n *Node) groupStatus(st raftnode.Status, kind, vhost, queue string) GroupStatus {
	gs := GroupStatus{ID: fmt.Sprintf("%#x", st.Group), Kind: kind, VHost: vhost, Queue: queue, State: st.State,
		Leader: n.memberName(st.Leader), Term: st.Term, Commit: st.Commit, Applied: st.Applied,
		Voters: []string{}, Learners: []string{}}
	for _, id := range st.Voters {
		gs.Voters = append(gs.Voters, n.memberName(id))
	}
	for _, id := range st.Learners {
		gs.Learners = append(gs.Learners, n.memberName(id))
	}
	for _, f := range st.Followers {
		gs.Followers = append(gs.Followers, FollowerStatus{Node: n.memberName(f.ID), Match: f.Match, Lag: f.Lag,
			State: f.State, Active: f.Active, Learner: f.Learner})
	}
	return gs
}

// Stats are the node's counters for the tern_raft_* metrics.
type Stats struct {
	Raft      raftnode.Stats
	GroupsLed int
	Transport transport.Stats
	// Peers maps member names (not this node) to whether they are
	// connected.
	Peers map[string]bool
	WAL   wal.Stats
	// WALFsync is the WAL's fsync latency in seconds, WALBatch the Raft
	// entries each fsync made durable.
	WALFsync, WALBatch HistogramSnapshot
	// CommitLatency is raftnode's proposal → local apply histogram, in
	// seconds.
	CommitLatency HistogramSnapshot
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := Stats{Raft: n.host.Stats(), Transport: n.tr.Stats(), Peers: map[string]bool{}, WAL: n.wal.Stats(),
		WALFsync: n.fsyncs.Snapshot(), WALBatch: n.batches.Snapshot()}
	lat := s.Raft.CommitLatency
	s.CommitLatency = HistogramSnapshot{Cumulative: lat.Cumulative, Count: lat.Count, Sum: lat.Sum.Seconds()}
	for _, b := range raftnode.CommitLatencyBounds {
		s.CommitLatency.Bounds = append(s.CommitLatency.Bounds, b.Seconds())
	}
	for _, id := range n.host.Groups() {
		if g := n.host.Group(id); g != nil && g.IsLeader() {
			s.GroupsLed++
		}
	}
	for _, m := range n.members() {
		if m.ID != n.cfg.Self.ID {
			s.Peers[m.Name] = s.Transport.Peers[m.ID].Connected
		}
	}
	return s
}

// IsStandby reports whether this node is a learner in the metadata group
// (a standby that serves no clients).
func (n *Node) IsStandby() bool {
	if g := n.meta.Load(); g != nil {
		return slices.Contains(g.Status().Learners, n.cfg.Self.ID)
	}
	return n.cfg.Self.Standby
}
