package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// Quorum returns the node's broker.QuorumGroups: every node hosts a
// replica of every quorum queue's group.
func (n *Node) Quorum() broker.QuorumGroups { return quorumGroups{n} }

type quorumGroups struct{ n *Node }

// Open implements broker.QuorumGroups: it starts (or restarts from the
// WAL) the group of the quorum queue def, with the placement's voters
// and every other member as a learner.
func (q quorumGroups) Open(def broker.QueueDef, m broker.ReplicatedMachine) (broker.ReplicatedLog, error) {
	n := q.n
	gid := QuorumGroupID(def.ID)
	voters, learners := Placement(def.ID, n.members(), broker.QuorumGroupSize(def.Args))
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, raftnode.ErrClosed
	}
	if other, ok := n.queues[gid]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("cluster: quorum queue %s in vhost %s: its group %#x is already open for queue %s in vhost %s",
			def.Name, def.VHost, gid, other.name, other.vhost)
	}
	n.mu.Unlock()
	bootVoters, bootLearners := n.bootConfig(voters, learners)
	n.labels.Store(gid, def.Name+" (vhost "+def.VHost+")") // before its first leader change is logged
	g, err := n.host.Start(gid, bootVoters, bootLearners, m)
	if err != nil {
		n.labels.Delete(gid)
		return nil, fmt.Errorf("cluster: quorum queue %s in vhost %s: %w", def.Name, def.VHost, err)
	}
	r := &replicatedLog{n: n, id: gid, g: g}
	if len(bootVoters) > 0 && voters[0] == n.cfg.Self.ID {
		g.CampaignFirst() // led by its preferred leader from the start: no transfer under load later
	}
	n.mu.Lock()
	n.queues[gid] = queueGroup{vhost: def.VHost, name: def.Name, voters: voters, size: broker.QuorumGroupSize(def.Args),
		target: targetGroupSize(def.Args), g: g}
	n.mu.Unlock()
	return r, nil
}

// LocalQueueID implements broker.LocalQuorumIDs: a new quorum queue's id
// that makes this node its preferred leader, so the queue is led where it
// was declared (client-local).
func (q quorumGroups) LocalQueueID() string {
	return localQueueID(q.n.cfg.Self.ID, q.n.members(), broker.NewQueueID)
}

// replicatedLog is broker.ReplicatedLog over one raftnode.Group.
type replicatedLog struct {
	n  *Node
	id uint64
	g  *raftnode.Group
}

// ErrLeaderChanged completes a quorum queue proposal that had reached a
// leader which then lost leadership before it applied: it may still
// commit, as after raftnode's proposal timeout, but nobody waits that
// (5 s) out — a publisher's confirms go out in publish order, so one lost
// proposal would hold back every later confirm.
var ErrLeaderChanged = raftnode.ErrLeaderChanged

// Propose implements broker.ReplicatedLog. A proposal handed to a leader
// that then loses leadership fails at once with ErrLeaderChanged; one made
// while no leader is known, or during a leadership transfer, waits and
// goes to the new leader (raftnode.Group.ProposeAsyncFailFast).
func (r *replicatedLog) Propose(data []byte, done func(any, error)) {
	r.g.ProposeAsyncFailFast(data, done)
}

func (r *replicatedLog) IsLeader() bool        { return r.g.IsLeader() }
func (r *replicatedLog) Live(node uint64) bool { return r.g.Live(node) }

func (r *replicatedLog) Close() {
	r.forget()
	r.g.Close()
}

// Delete removes the group's replica for good. The broker calls it under
// the vhost's lock, possibly from another group's goroutine (the metadata
// group applying the delete), while this group's goroutine may be waiting
// for that lock in Apply or a completion: so it does not wait for the
// group to stop. The group stops and its storage goes on a goroutine of
// its own, which Node.Close waits for.
func (r *replicatedLog) Delete() {
	r.forget()
	r.n.deleting.Add(1)
	go func() {
		defer r.n.deleting.Done()
		if err := r.g.Delete(); err != nil {
			r.n.log.Warn("could not remove a deleted quorum queue's Raft state", "group", r.id, "err", err)
		}
	}()
}

func (r *replicatedLog) forget() {
	r.n.mu.Lock()
	if q, ok := r.n.queues[r.id]; ok && q.g == r.g {
		delete(r.n.queues, r.id)
		r.n.labels.Delete(r.id)
	}
	r.n.mu.Unlock()
}

// rebalanceEvery is how often a node checks the quorum groups it leads.
const rebalanceEvery = 5 * time.Second

// rebalance hands leadership of each quorum group this node leads to the
// group's first voter (Placement's preferred leader) when that node is
// live and caught up: after a failover the leaders gather on the
// survivors, and this moves each back when its node returns, so leaders
// stay spread across the nodes.
func (n *Node) rebalance() { n.every(rebalanceEvery, n.rebalanceLeaders) }

// rebalanceLeaders is one round of rebalance.
func (n *Node) rebalanceLeaders() {
	n.syncPeers() // a removal proposed by another node
	n.mu.Lock()
	var lead []queueGroup
	for _, q := range n.queues {
		if to := preferredLeader(q); to != 0 && to != n.cfg.Self.ID && q.g.IsLeader() {
			lead = append(lead, q)
		}
	}
	n.mu.Unlock()
	for _, q := range lead {
		to := preferredLeader(q)
		if !caughtUp(q.g.Status(), to) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := q.g.TransferLeadership(ctx, to)
		cancel()
		if err != nil {
			n.log.Info("could not hand a quorum queue back to its preferred leader", "vhost", q.vhost, "queue", q.name, "to", n.memberName(to), "err", err)
		}
		select {
		case <-n.stop:
			return
		default:
		}
	}
}

// caughtUp: node is live and has every entry the leader has.
func caughtUp(st raftnode.Status, node uint64) bool {
	for _, f := range st.Followers {
		if f.ID == node {
			return f.Active && f.Lag == 0 && f.State == "replicate"
		}
	}
	return false
}

// ErrUnknownNode is returned for a node name that is not a member.
var ErrUnknownNode = errors.New("cluster: no such node")

// Promote makes the standby node name a voter: in the metadata group
// first (which is what lets it serve clients: its server watches its own
// role) and then in every quorum group it is a learner of, so it holds a
// vote wherever it holds a replica. It may be called on any node; each
// change is proposed to its group's leader. Promoting a voter changes
// nothing.
func (n *Node) Promote(ctx context.Context, name string) error {
	var id uint64
	for _, m := range n.members() {
		if m.Name == name {
			id = m.ID
		}
	}
	if id == 0 {
		return fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	g := n.meta.Load()
	if g == nil {
		return errors.New("cluster: the metadata group is not running yet")
	}
	if slices.Contains(g.Status().Learners, id) {
		if err := changeConf(ctx, g, func(st raftnode.Status) bool { return slices.Contains(st.Voters, id) }, g.Promote, id); err != nil {
			return fmt.Errorf("cluster: promoting %s in the metadata group: %w", name, err)
		}
		n.log.Info("node promoted to voter in the metadata group", "node", name)
	}
	n.mu.Lock()
	var groups []queueGroup
	for _, q := range n.queues {
		groups = append(groups, q)
	}
	n.mu.Unlock()
	var errs []error
	for _, q := range groups {
		if !slices.Contains(q.g.Status().Learners, id) {
			continue
		}
		if err := changeConf(ctx, q.g, func(st raftnode.Status) bool { return slices.Contains(st.Voters, id) }, q.g.Promote, id); err != nil {
			errs = append(errs, fmt.Errorf("quorum queue %s in vhost %s: %w", q.name, q.vhost, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: %s is a voter in the metadata group, but not yet in every quorum queue (promote again to retry): %w", name, errors.Join(errs...))
	}
	return nil
}

// Remove is RemoveNode (membership_change.go): the node leaves every
// group, is tombstoned (its name never comes back) and stops.
func (n *Node) Remove(ctx context.Context, name string) error { return n.RemoveNode(ctx, name) }

// syncPeers drops the transport's peers that the metadata group's
// configuration no longer has (removed nodes): their connections close and
// new ones are refused as from an unknown node.
func (n *Node) syncPeers() {
	g := n.meta.Load()
	if g == nil {
		return
	}
	st := g.Status()
	if len(st.Voters) == 0 {
		return
	}
	for _, m := range n.cfg.Members {
		if m.ID == n.cfg.Self.ID || slices.Contains(st.Voters, m.ID) || slices.Contains(st.Learners, m.ID) {
			continue
		}
		n.mu.Lock()
		done := n.removed[m.ID]
		if n.removed == nil {
			n.removed = map[uint64]bool{}
		}
		n.removed[m.ID] = true
		n.mu.Unlock()
		if !done {
			n.tr.RemovePeer(m.ID)
			n.fwd.NodeDown(m.ID)
			n.log.Info("node removed from the cluster: its connections are refused from now on", "node", m.Name)
		}
	}
}

// changeConf proposes a configuration change until the group's
// configuration is what done wants, or ctx ends: a change lost in a leader
// change (proposed to a leader that just died) fails with
// ErrProposalTimeout, and proposing it again is harmless (adding a voter
// that is one, or removing a node that is gone, changes nothing).
func changeConf(ctx context.Context, g *raftnode.Group, done func(raftnode.Status) bool, change func(context.Context, uint64) error, id uint64) error {
	for {
		if done(g.Status()) {
			return nil
		}
		err := change(ctx, id)
		if err == nil || !errors.Is(err, raftnode.ErrProposalTimeout) || ctx.Err() != nil {
			return err
		}
	}
}
