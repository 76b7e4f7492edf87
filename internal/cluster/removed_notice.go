package cluster

import (
	"context"
	"errors"
	"sync"

	"github.com/tern-broker/tern/internal/cluster/transport"
)

// A node removed from the cluster while it was down never applies its
// tombstone (it is out of the metadata group), so it learns of its removal
// from the members: each tombstones it in its transport (reconcile), and
// answers its handshakes with an authenticated removal notice
// (transport.RemovedError) instead of "unknown node id". The node then
// stops for good, saying it was removed (RemovedError), at once rather
// than after waiting StartTimeout for a cluster that will never take it
// (user7 4.4).

// toldRemoved is the transport's OnRemoved: the member by says this node
// was removed. The notice is authenticated (only a holder of the secret
// can make it), so the node believes it.
func (n *Node) toldRemoved(by transport.NodeID) {
	if !n.markRemoved() {
		return
	}
	n.log.Error("a member says this node was removed from the cluster: it stops, and its name cannot rejoin (replica ids are never reused); start a new node under a new name with a fresh data directory",
		"node", n.cfg.Self.Name, "told_by", n.memberName(by))
}

// probeLowerPeers asks each member with a lower id that has no connection
// to this node whether it still counts this node in: those members dial
// this node (only the lower id dials), and one that removed it never
// will, so without asking a removed node would not hear of it.
func (n *Node) probeLowerPeers(ctx context.Context) {
	st := n.tr.Stats()
	var wg sync.WaitGroup
	for _, m := range n.members() {
		if m.ID >= n.cfg.Self.ID || st.Peers[m.ID].Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var gone *transport.RemovedError
			err := n.tr.Probe(ctx, m.ID, m.Addr)
			if errors.As(err, &gone) {
				n.toldRemoved(m.ID)
			}
			n.noteProbe(m.ID, err) // not_member.go
		}()
	}
	wg.Wait()
}
