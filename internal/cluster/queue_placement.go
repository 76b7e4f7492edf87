package cluster

import (
	"slices"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// QueuePlace is where one queue lives, as this node sees it: for a classic
// queue or stream its home node and whether this node reaches it, for a
// quorum queue its leader, its voters and those of them this node reaches.
type QueuePlace struct {
	Node    string // home (classic, stream) or leader (quorum); "" unknown
	Down    bool   // the home node is not reachable from this node
	Leader  string
	Members []string
	Online  []string
}

// Placements returns a lookup of where queues live, for one listing of the
// management API: the members' names and connections are read once, and a
// quorum queue's group is found by name in an index built once, its Raft
// status read only for the queues asked about.
func (n *Node) Placements() func(vhost, name string, home uint64, quorum bool) QueuePlace {
	ts := n.tr.Stats()
	self := n.cfg.Self.ID
	reachable := func(id uint64) bool { return id == self || ts.Peers[id].Connected }
	n.mu.Lock()
	groups := make(map[[2]string]*raftnode.Group, len(n.queues))
	for _, q := range n.queues {
		groups[[2]string{q.vhost, q.name}] = q.g
	}
	n.mu.Unlock()
	return func(vhost, name string, home uint64, quorum bool) QueuePlace {
		if !quorum {
			if home == 0 {
				return QueuePlace{}
			}
			return QueuePlace{Node: n.memberName(home), Down: !reachable(home)}
		}
		g := groups[[2]string{vhost, name}]
		if g == nil {
			return QueuePlace{}
		}
		st := g.Status()
		p := QueuePlace{Leader: n.memberName(st.Leader)}
		p.Node = p.Leader
		voters := slices.Clone(st.Voters)
		slices.Sort(voters)
		for _, id := range voters {
			p.Members = append(p.Members, n.memberName(id))
			if reachable(id) {
				p.Online = append(p.Online, n.memberName(id))
			}
		}
		return p
	}
}

// MemberState is a member of the cluster as this node sees it, for the
// management API's /api/nodes.
type MemberState struct {
	Name      string
	Self      bool
	Reachable bool // this node has a connection to it (always, for itself)
}

// MemberStates lists the members (not the removed ones), this node first.
func (n *Node) MemberStates() []MemberState {
	ts := n.tr.Stats()
	var out []MemberState
	for _, m := range n.members() {
		self := m.ID == n.cfg.Self.ID
		st := MemberState{Name: m.Name, Self: self, Reachable: self || ts.Peers[m.ID].Connected}
		if self {
			out = append([]MemberState{st}, out...)
			continue
		}
		out = append(out, st)
	}
	return out
}

// groupLabel names a Raft group in log lines: "metadata", or a quorum
// queue as "name (vhost v)"; "" for a group this node does not know.
func (n *Node) groupLabel(id uint64) string {
	if g := n.meta.Load(); g != nil && g.ID() == id {
		return "metadata"
	}
	if l, ok := n.labels.Load(id); ok {
		return l.(string)
	}
	return ""
}
