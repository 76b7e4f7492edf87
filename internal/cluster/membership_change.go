package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// Membership changes of a running cluster: AddNode and RemoveNode (asked
// of any member), PromoteMember, and what each node does about the
// recorded membership on its own (reconcile).

// openGroups are the quorum groups open on this node.
func (n *Node) openGroups() []queueGroup {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]queueGroup, 0, len(n.queues))
	for _, q := range n.queues {
		out = append(out, q)
	}
	return out
}

func inConf(st raftnode.Status, id uint64) bool {
	return slices.Contains(st.Voters, id) || slices.Contains(st.Learners, id)
}

// AddNode adds the node name, listening for cluster traffic on addr, to
// the running cluster: it records the member in the metadata group (every
// node learns its address; a removed name is refused with ErrNodeRemoved),
// then adds it as a non-voting learner to the metadata group and to every
// quorum queue's group. The new node — started with Config.Join — catches
// up from the leaders and, if it is a voter, promotes itself in the
// metadata group and in the quorum groups that have fewer voters than
// their size (reconcile). It may be called on any member; calling it again
// resumes an interrupted add.
func (n *Node) AddNode(ctx context.Context, name, addr string, standby bool) error {
	m := Member{ID: MemberID(name), Name: name, Addr: addr, Standby: standby}
	if err := checkMember(m); err != nil {
		return err
	}
	if err := n.proposeMembership(ctx, memberOp{Op: opAdd, Member: &m}); err != nil {
		return err
	}
	g := n.meta.Load()
	if !inConf(g.Status(), m.ID) {
		if err := g.AddLearner(ctx, m.ID); err != nil {
			return fmt.Errorf("cluster: %s is a member, but adding it to the metadata group failed (add it again to retry): %w", name, err)
		}
		n.log.Info("node added to the metadata group as a learner", "node", name)
	}
	var errs []error
	for _, q := range n.openGroups() {
		if inConf(q.g.Status(), m.ID) {
			continue
		}
		if err := q.g.AddLearner(ctx, m.ID); err != nil {
			errs = append(errs, fmt.Errorf("quorum queue %s in vhost %s: %w", q.name, q.vhost, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: %s is in the metadata group, but not yet in every quorum queue (add it again to retry): %w", name, errors.Join(errs...))
	}
	return nil
}

// RemoveNode removes the node name from the cluster for good: from every
// quorum queue's group (leadership is handed away first if it leads one),
// then it is tombstoned in the metadata (its name and replica id are never
// used again), then removed from the metadata group. The removed node
// stops serving once it applies its tombstone; every node forgets its
// address once it is out of the metadata group. A node cannot remove
// itself (ask another member). Calling it again resumes an interrupted
// removal.
func (n *Node) RemoveNode(ctx context.Context, name string) error {
	if name == n.cfg.Self.Name {
		return fmt.Errorf("%w: %s cannot remove itself: ask another member", ErrBadMember, name)
	}
	st := n.memberState()
	m, ok := st.find(name)
	if !ok {
		i := slices.IndexFunc(st.Removed, func(r Member) bool { return r.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: %q", ErrUnknownNode, name)
		}
		m = st.Removed[i]
	}
	var errs []error
	for _, q := range n.openGroups() {
		if err := n.removeFrom(ctx, q.g, m.ID); err != nil {
			errs = append(errs, fmt.Errorf("quorum queue %s in vhost %s: %w", q.name, q.vhost, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: %s is still in some quorum queues (remove it again to retry): %w", name, errors.Join(errs...))
	}
	g := n.meta.Load()
	if err := n.handOff(ctx, g, m.ID); err != nil {
		return fmt.Errorf("cluster: %s leads the metadata group and would not hand it over: %w", name, err)
	}
	if err := n.proposeMembership(ctx, memberOp{Op: opRemove, Member: &Member{Name: name}}); err != nil {
		return err
	}
	if err := n.removeFrom(ctx, g, m.ID); err != nil {
		return fmt.Errorf("cluster: %s is tombstoned, but still in the metadata group (remove it again to retry): %w", name, err)
	}
	n.log.Info("node removed from the cluster", "node", name)
	// Its classic queues and streams went with it: delete them
	// (queue_lifecycle.go; the metadata leader retries what fails here).
	if nq := n.nodeQueues(); nq != nil {
		if err := n.forgetQueues(ctx, nq, name, m.ID); err != nil {
			return fmt.Errorf("cluster: %s is removed, but not every queue it held is deleted yet (the metadata leader retries; remove it again to retry now): %w", name, err)
		}
	}
	return nil
}

// PromoteMember records the standby name's promotion in the membership
// (so quorum queues declared later place it as a voter, and it refills
// under-replicated ones) and then makes it a voter in every group it is a
// learner of (Promote).
func (n *Node) PromoteMember(ctx context.Context, name string) error {
	if err := n.proposeMembership(ctx, memberOp{Op: opPromote, Member: &Member{Name: name}}); err != nil {
		return err
	}
	return n.Promote(ctx, name)
}

// removeFrom removes node from group g (after handing leadership away).
func (n *Node) removeFrom(ctx context.Context, g *raftnode.Group, node uint64) error {
	if !inConf(g.Status(), node) {
		return nil
	}
	if err := n.handOff(ctx, g, node); err != nil {
		return err
	}
	return g.RemoveNode(ctx, node)
}

// handOff moves g's leadership off node, if node leads: to this node when
// it is a voter, else to another voter. Raft would elect a new leader
// after the removal anyway; handing over first spares the group an
// election timeout without a leader.
func (n *Node) handOff(ctx context.Context, g *raftnode.Group, node uint64) error {
	st := g.Status()
	if st.Leader != node {
		return nil
	}
	to := uint64(0)
	if slices.Contains(st.Voters, n.cfg.Self.ID) {
		to = n.cfg.Self.ID
	} else {
		for _, v := range st.Voters {
			if v != node {
				to = v
				break
			}
		}
	}
	if to == 0 {
		return errors.New("no other voter to hand leadership to")
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return g.TransferLeadership(tctx, to)
}

// reconcileEvery is how often a node checks its membership's effects.
const reconcileEvery = time.Second

// reconcileMembers runs reconcile until the node closes.
func (n *Node) reconcileMembers() { n.every(reconcileEvery, n.reconcile) }

// reconcile does what the membership asks of this node: forget removed
// peers once they are out of the metadata group; and, when this node is a
// voting member that has caught up as a learner (added by AddNode), make
// itself a voter in the metadata group and in every quorum group that has
// fewer voters than its size (a group that lost a voter to a removal
// grows back onto it). Raft serializes the changes; two learners promoting
// themselves at once may leave a group one voter over its size.
func (n *Node) reconcile() {
	g := n.meta.Load()
	if g == nil {
		return
	}
	ms := n.memberState()
	mst := g.Status()
	for _, r := range ms.Removed {
		if r.ID != n.cfg.Self.ID && !inConf(mst, r.ID) && !n.ms.forgotten[r.ID] {
			if n.ms.forgotten == nil {
				n.ms.forgotten = map[uint64]bool{}
			}
			n.ms.forgotten[r.ID] = true
			n.tr.Tombstone(r.ID) // its handshakes are told it was removed
			n.fwd.NodeDown(r.ID)
			n.log.Info("removed node forgotten: its connections are refused from now on", "node", r.Name)
		}
	}
	self, ok := ms.find(n.cfg.Self.Name)
	if !ok || self.Standby {
		return
	}
	me := n.cfg.Self.ID
	if slices.Contains(mst.Learners, me) && caughtUpHere(mst) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := g.Promote(ctx, me)
		cancel()
		if err != nil {
			n.log.Info("could not promote this node to voter in the metadata group yet", "err", err)
			return
		}
		n.log.Info("this node caught up and is now a voter in the metadata group")
	}
	voting := 0
	for _, m := range ms.Members {
		if !m.Standby {
			voting++
		}
	}
	for _, q := range n.openGroups() {
		st := q.g.Status()
		if !slices.Contains(st.Learners, me) || len(st.Voters) >= q.wantVoters(voting) || !caughtUpHere(st) {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := q.g.Promote(ctx, me)
		cancel()
		if err != nil {
			n.log.Info("could not become a voter of an under-replicated quorum queue yet", "vhost", q.vhost, "queue", q.name, "err", err)
			continue
		}
		n.log.Info("this node is now a voter of a quorum queue that had fewer voters than its size", "vhost", q.vhost, "queue", q.name, "voters", len(st.Voters)+1)
		select {
		case <-n.stop:
			return
		default:
		}
	}
}

// caughtUpHere: this replica knows a leader and has applied everything it
// knows committed.
func caughtUpHere(st raftnode.Status) bool {
	return st.Leader != 0 && st.Commit > 0 && st.Applied >= st.Commit
}

// preferredLeader is the quorum group's preferred leader: the first node
// of its placement that is a voter of the group now (the placement was
// computed from the membership when this node opened the group; members
// come and go since).
func preferredLeader(q queueGroup) uint64 {
	st := q.g.Status()
	for _, v := range q.voters {
		if slices.Contains(st.Voters, v) {
			return v
		}
	}
	return 0
}
