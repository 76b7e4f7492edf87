package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/cluster/meta"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// membership is a Node's replicated membership (members.go) and what the
// node does about it: the transport learns every member's address, the
// node learns it was removed.
type membership struct {
	mu      sync.Mutex
	st      memberState
	removed chan struct{} // closed once this node is tombstoned; made lazily
	// restoring is set while the metadata group restores a snapshot: the
	// quorum queues it opens existed before the snapshot, so this node
	// cannot know their first configuration and starts them empty.
	restoring atomic.Bool
	forgotten map[uint64]bool // tombstoned peers the transport forgot (reconcile goroutine)
}

func (ms *membership) removedCh() chan struct{} {
	if ms.removed == nil {
		ms.removed = make(chan struct{})
	}
	return ms.removed
}

// members is the current membership: the replicated one, or before it is
// recorded the --peers list.
func (n *Node) members() []Member {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	if n.ms.st.Set {
		return slices.Clone(n.ms.st.Members)
	}
	return n.cfg.Members
}

// ClusterName is the cluster's name, the same on every node (user8 F16;
// RabbitMQ's cluster_name, by default its first node's name): the name of
// the first member of the replicated membership, the first node of the
// founders' --peers list while it is a member.
func (n *Node) ClusterName() string {
	if ms := n.members(); len(ms) > 0 {
		return ms[0].Name
	}
	return n.cfg.Self.Name
}

// knownMembers is members and the tombstones, for naming replica ids.
func (n *Node) knownMembers() []Member {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	if n.ms.st.Set {
		return append(slices.Clone(n.ms.st.Members), n.ms.st.Removed...)
	}
	return n.cfg.Members
}

func (n *Node) memberState() memberState {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	return n.ms.st.clone()
}

// Removed is closed once this node applied its own removal from the
// cluster: the server stops serving.
func (n *Node) Removed() <-chan struct{} {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	return n.ms.removedCh()
}

// RemovedError is the error a removed node stops with (nil while it is a
// member).
func (n *Node) RemovedError() error {
	select {
	case <-n.Removed():
		return fmt.Errorf("cluster: node %s was removed from the cluster (tern cluster remove-node): it cannot rejoin under this name; start a new node under a new name, with a fresh data directory, and add it with tern cluster add-node",
			n.cfg.Self.Name)
	default:
		return nil
	}
}

// startConfig is the metadata group's first configuration on this node: a
// node joining a running cluster (Config.Join) starts with none and waits
// for the leader to send it the group once it is added.
func (n *Node) startConfig() (voters, learners []uint64) {
	if n.cfg.Join {
		return nil, nil
	}
	return voting(n.cfg.Members)
}

// startEntry is what Start proposes and waits for: a founding node's
// founders record (applied only if no membership is recorded yet, and
// doubling as Start's barrier); a joining node's barrier.
func (n *Node) startEntry() []byte {
	if n.cfg.Join {
		return meta.EncodeBarrier()
	}
	return encodeMemberOp(memberOp{Op: opFounders, Members: n.cfg.Members, Cluster: n.drawn, Node: n.cfg.Self.Name})
}

// bootConfig is the configuration a quorum queue's group starts with on
// this node when its storage is new: the placement, when this node is in
// it and the placement is the group's first configuration — the queue is
// being declared at this index of the metadata log, whose membership every
// node shares. Otherwise (a snapshot being restored, a joining node before
// its membership is recorded, a node the placement leaves out) the group
// starts empty and the group's leader sends it a snapshot once this node
// is added (AddNode).
func (n *Node) bootConfig(voters, learners []uint64) ([]uint64, []uint64) {
	if n.ms.restoring.Load() {
		return nil, nil
	}
	n.ms.mu.Lock()
	set := n.ms.st.Set
	n.ms.mu.Unlock()
	if !set && n.cfg.Join {
		return nil, nil
	}
	if !slices.Contains(voters, n.cfg.Self.ID) && !slices.Contains(learners, n.cfg.Self.ID) {
		return nil, nil
	}
	return voters, learners
}

// applyMembership applies a membership record on the metadata group's
// goroutine, then tells the transport of new members.
func (n *Node) applyMembership(index uint64, data []byte) any {
	op, err := decodeMemberOp(data)
	if err != nil {
		n.log.Error("skipping a membership record that does not decode", "index", index, "err", err)
		return err
	}
	n.ms.mu.Lock()
	before := len(n.ms.st.Members)
	err = n.ms.st.apply(op)
	st := n.ms.st.clone()
	n.ms.mu.Unlock()
	if err != nil {
		return err
	}
	for _, m := range st.Members {
		n.tr.SetPeer(m.ID, m.Addr) // no-op for this node and known addresses
	}
	n.noteCluster(st.Cluster)
	switch op.Op {
	case opAdd:
		if len(st.Members) > before {
			n.log.Info("node added to the cluster's membership", "node", op.Member.Name, "addr", op.Member.Addr, "role", roleName(op.Member.Standby), "index", index)
		}
	case opRemove:
		n.log.Info("node removed from the cluster's membership", "node", op.Member.Name, "index", index)
	}
	n.noteSelfRemoved(st)
	return nil
}

// markRemoved closes Removed, once: it reports whether this call did (the
// tombstone and a member's notice can both come).
func (n *Node) markRemoved() bool {
	n.ms.mu.Lock()
	defer n.ms.mu.Unlock()
	ch := n.ms.removedCh()
	select {
	case <-ch:
		return false
	default:
	}
	close(ch)
	return true
}

// noteSelfRemoved closes Removed when this node is tombstoned.
func (n *Node) noteSelfRemoved(st memberState) {
	if !slices.ContainsFunc(st.Removed, func(m Member) bool { return m.ID == n.cfg.Self.ID }) {
		return
	}
	if !n.markRemoved() {
		return
	}
	n.log.Error("this node was removed from the cluster: it stops serving, and its name cannot rejoin (replica ids are never reused); start a new node under a new name with a fresh data directory",
		"node", n.cfg.Self.Name)
}

// memberMachine is the metadata group's state machine: meta's machine for
// definitions, plus the membership records and their snapshot.
type memberMachine struct {
	n     *Node
	inner raftnode.StateMachine
}

func (n *Node) memberMachine(inner raftnode.StateMachine) raftnode.StateMachine {
	return memberMachine{n: n, inner: inner}
}

// Apply returns the result with the entry's index (appliedAt), which a
// proposer needs to wait for the other members (visible.go).
func (m memberMachine) Apply(index uint64, data []byte) any {
	if len(data) > 0 && data[0] == kindMembership {
		return appliedAt{index, m.n.applyMembership(index, data)}
	}
	return appliedAt{index, m.inner.Apply(index, data)}
}

// membershipSnapshot is the first byte of a metadata snapshot that holds
// the membership: then a 4-byte big-endian length, the membership as JSON,
// and meta's snapshot. meta's own snapshots start with 1.
const membershipSnapshot byte = 0x4d

func (m memberMachine) Snapshot() ([]byte, error) {
	inner, err := m.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	st := m.n.memberState()
	js, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 5+len(js)+len(inner))
	out = append(out, membershipSnapshot)
	out = binary.BigEndian.AppendUint32(out, uint32(len(js)))
	out = append(out, js...)
	return append(out, inner...), nil
}

// splitSnapshot separates a metadata snapshot into the membership (ok
// false for a snapshot without one, written before membership was
// recorded) and meta's part.
func splitSnapshot(data []byte) (st memberState, ok bool, inner []byte, err error) {
	if len(data) == 0 || data[0] != membershipSnapshot {
		return memberState{}, false, data, nil
	}
	if len(data) < 5 {
		return st, false, nil, errors.New("cluster: metadata snapshot: truncated membership")
	}
	size := binary.BigEndian.Uint32(data[1:5])
	if uint64(size) > uint64(len(data)-5) {
		return st, false, nil, fmt.Errorf("cluster: metadata snapshot: membership of %d bytes in %d", size, len(data)-5)
	}
	if err := json.Unmarshal(data[5:5+size], &st); err != nil {
		return st, false, nil, fmt.Errorf("cluster: metadata snapshot: membership: %w", err)
	}
	return st, true, data[5+size:], nil
}

func (m memberMachine) Restore(data []byte) error {
	st, _, inner, err := splitSnapshot(data)
	if err != nil {
		return err
	}
	m.n.ms.mu.Lock()
	m.n.ms.st = st
	m.n.ms.mu.Unlock()
	for _, mb := range st.Members {
		m.n.tr.SetPeer(mb.ID, mb.Addr)
	}
	m.n.noteSelfRemoved(st)
	m.n.noteCluster(st.Cluster)
	m.n.ms.restoring.Store(true)
	defer m.n.ms.restoring.Store(false)
	return m.inner.Restore(inner)
}

func (m memberMachine) LeaderChanged(leader uint64, isLocal bool) {
	m.inner.LeaderChanged(leader, isLocal)
}

// proposeMembership replicates a membership record and returns its apply
// error; a proposal lost in a leader change is proposed again while ctx
// lasts (applying a record twice changes nothing).
func (n *Node) proposeMembership(ctx context.Context, op memberOp) error {
	g := n.meta.Load()
	if g == nil {
		return errors.New("cluster: the metadata group is not running yet")
	}
	data := encodeMemberOp(op)
	for {
		res, err := g.Propose(ctx, data)
		if errors.Is(err, raftnode.ErrProposalTimeout) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("cluster: the membership change did not commit: %w", err)
		}
		_, res = unwrapApplied(res)
		if err, ok := res.(error); ok && err != nil {
			return err
		}
		return nil
	}
}

// removedStatus lists the tombstoned nodes for Status, role "removed".
func (n *Node) removedStatus() []NodeStatus {
	var out []NodeStatus
	for _, m := range n.memberState().Removed {
		out = append(out, NodeStatus{Name: m.Name, ID: fmt.Sprintf("%#x", m.ID), Address: m.Addr, Role: "removed", Self: m.ID == n.cfg.Self.ID})
	}
	return out
}
