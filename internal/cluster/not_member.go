package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tern-broker/tern/internal/cluster/transport"
)

// A node started without --join on a fresh data directory next to a
// running cluster that does not count it in founds a metadata group of its
// own from --peers and waits for a quorum that never comes: the members
// refuse its handshakes as an "unknown node id" (when it dials them, the
// lower id dialing) or never dial it (they do not know it). Start blamed
// connectivity after StartTimeout, with every member up (user7 5.7). So
// while it starts the node reads the refusals of its own dials
// (transport.PeerStats.Refusal) and of its probes of lower-id members
// (probeLowerPeers), says within seconds which members do not count it
// in and what to do, and Start's error says the same.

// unknownRefusal starts the reason a member's transport gives for a node id
// that is not among its peers (transport/handshake.go).
const unknownRefusal = "unknown node id"

// notMember is what the probes learnt, and what was last logged.
type notMember struct {
	mu     sync.Mutex
	probed map[uint64]string // lower-id member → the reason it refused the last probe
	logged string            // the names last logged
}

// noteProbe records a probe's outcome: a refusal's reason, or none after
// a probe that got through. A probe that failed otherwise (a timeout under
// load, Start's context ending) leaves the last refusal standing.
func (n *Node) noteProbe(id uint64, err error) {
	var re *transport.RefusedError
	n.notIn.mu.Lock()
	defer n.notIn.mu.Unlock()
	if err == nil {
		delete(n.notIn.probed, id)
		return
	}
	if !errors.As(err, &re) {
		return
	}
	if n.notIn.probed == nil {
		n.notIn.probed = map[uint64]string{}
	}
	n.notIn.probed[id] = re.Reason
}

// notCountedIn names the members that last refused this node as an
// unknown node id (sorted).
func (n *Node) notCountedIn() []string {
	st := n.tr.Stats()
	members := n.members() // before notIn.mu: it takes the membership's lock
	n.notIn.mu.Lock()
	defer n.notIn.mu.Unlock()
	var names []string
	for _, m := range members {
		if m.ID == n.cfg.Self.ID || st.Peers[m.ID].Connected {
			continue
		}
		if strings.HasPrefix(st.Peers[m.ID].Refusal, unknownRefusal) || strings.HasPrefix(n.notIn.probed[m.ID], unknownRefusal) {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return names
}

// notMemberHint says what members refusing this node as unknown mean,
// and what to do about it.
func (n *Node) notMemberHint(names []string) string {
	self := n.cfg.Self
	switch {
	case n.cfg.Join:
		return fmt.Sprintf("members %v do not count this node in yet (they refuse it as an unknown node id): add it from a member with tern cluster add-node %s %s (or POST /api/cluster/nodes); it then catches up",
			names, self.Name, self.Addr)
	case n.ClusterID() == "":
		return fmt.Sprintf("members %v refuse this node as an unknown node id: they form a cluster that does not count it in, and this node, started without --join on a new data directory, founds one of its own from --peers that they will never join. To add a node to a running cluster, stop this one, start it on an empty data directory with --join, and add it from a member with tern cluster add-node %s %s",
			names, self.Name, self.Addr)
	default:
		return fmt.Sprintf("members %v refuse this node as an unknown node id: their membership does not list it (was it removed, or were they re-created on new data directories?); a node that left the cluster comes back under a new name, on an empty data directory, with --join and tern cluster add-node",
			names)
	}
}

// warnNotMember logs notMemberHint when the set of members refusing this
// node as unknown changes: a WARN (an INFO for a joining node, for which
// it is the expected state until tern cluster add-node).
func (n *Node) warnNotMember() {
	names := n.notCountedIn()
	key := strings.Join(names, ",")
	n.notIn.mu.Lock()
	changed := key != n.notIn.logged
	n.notIn.logged = key
	n.notIn.mu.Unlock()
	if !changed || len(names) == 0 {
		return
	}
	if n.cfg.Join {
		n.log.Info("waiting to be added to the cluster: " + n.notMemberHint(names))
		return
	}
	n.log.Warn("this node is not a member of its peers' cluster: " + n.notMemberHint(names))
}

// errNotAMember ends Start's wait (checkWhileStarting cancels its context
// with it) when a node started without --join is refused as an unknown
// node id by every member it reaches: waiting the whole StartTimeout (2
// minutes) changed nothing, the members do nothing with it.
type errNotAMember struct{ hint string }

func (e errNotAMember) Error() string { return e.hint }

// refusedByEveryReachable names the members refusing this node as an
// unknown node id when they are all the members it reaches: none is
// connected (a member that counts it in accepts its handshake or dials
// it). Members it cannot reach at all do not count either way.
func (n *Node) refusedByEveryReachable() []string {
	names := n.notCountedIn()
	if len(names) == 0 {
		return nil
	}
	st := n.tr.Stats()
	for _, m := range n.members() {
		if m.ID != n.cfg.Self.ID && st.Peers[m.ID].Connected {
			return nil
		}
	}
	return names
}

// notAMemberRounds is how many consecutive checks (2 s apart, after the
// lower-id members were probed) must find every reachable member refusing
// a node started without --join before it gives up: one more than needed,
// so a member that counts it in but had not dialed it yet gets the time.
const notAMemberRounds = 2
