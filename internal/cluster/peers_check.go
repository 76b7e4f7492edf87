package cluster

import (
	"fmt"
	"strings"
)

// A node restarted later knows the membership from its log, not from its
// --peers (docs/clustering.md), so --peers that disagree with it change
// nothing — and said nothing, which left a user who edited them (a node
// listed that was removed, another's address changed) believing they
// counted (user7 5.7). Start logs the differences once it caught up: at
// INFO, since the members' --peers need not change when a node is added
// or removed; at WARN when this node's own address differs from the one
// recorded, which is where the other members dial it.

// peersDiffer lists how given (--peers) differs from the recorded
// membership, removed being its tombstones; self names this node.
func peersDiffer(self string, given, recorded, removed []Member) (diffs []string, selfMoved bool) {
	rec := map[string]Member{}
	for _, m := range recorded {
		rec[m.Name] = m
	}
	gone := map[string]bool{}
	for _, m := range removed {
		gone[m.Name] = true
	}
	listed := map[string]bool{}
	for _, g := range given {
		listed[g.Name] = true
		r, ok := rec[g.Name]
		switch {
		case !ok && gone[g.Name]:
			diffs = append(diffs, g.Name+" was removed from the cluster")
		case !ok:
			diffs = append(diffs, g.Name+" is not a member")
		case r.Addr != g.Addr:
			diffs = append(diffs, fmt.Sprintf("%s is at %s in --peers, %s in the membership", g.Name, g.Addr, r.Addr))
			selfMoved = selfMoved || g.Name == self
		}
	}
	for _, r := range recorded {
		if !listed[r.Name] {
			diffs = append(diffs, r.Name+" (a member) is not in --peers")
		}
	}
	return diffs, selfMoved
}

// logPeersDiffer logs how --peers differs from the recorded membership.
func (n *Node) logPeersDiffer() {
	st := n.memberState()
	if !st.Set {
		return
	}
	diffs, selfMoved := peersDiffer(n.cfg.Self.Name, n.cfg.Members, st.Members, st.Removed)
	if len(diffs) == 0 {
		return
	}
	if selfMoved {
		n.log.Warn("this node's cluster address differs from the one the membership records, where the other members dial it: they reach it only if that address still leads here (the membership counts, --peers is read at a node's first start only)",
			"differences", strings.Join(diffs, "; "))
		return
	}
	n.log.Info("--peers differs from the cluster's recorded membership, which is what counts (--peers is read at a node's first start only)",
		"differences", strings.Join(diffs, "; "))
}
