//go:build clusterwip

package cluster

import (
	"context"
	"fmt"
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
	voters, learners := Placement(def.ID, n.cfg.Members, quorumSize(def.Args))
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
	g, err := n.host.Start(gid, voters, learners, m)
	if err != nil {
		return nil, fmt.Errorf("cluster: quorum queue %s in vhost %s: %w", def.Name, def.VHost, err)
	}
	n.mu.Lock()
	n.queues[gid] = queueGroup{vhost: def.VHost, name: def.Name, voters: voters, g: g}
	n.mu.Unlock()
	return &replicatedLog{n: n, id: gid, g: g}, nil
}

// replicatedLog is broker.ReplicatedLog over one raftnode.Group.
type replicatedLog struct {
	n  *Node
	id uint64
	g  *raftnode.Group
}

func (r *replicatedLog) Propose(data []byte, done func(any, error)) { r.g.ProposeAsync(data, done) }
func (r *replicatedLog) IsLeader() bool                             { return r.g.IsLeader() }
func (r *replicatedLog) Live(node uint64) bool                      { return r.g.Live(node) }

func (r *replicatedLog) Close() {
	r.forget()
	r.g.Close()
}

func (r *replicatedLog) Delete() {
	r.forget()
	if err := r.g.Delete(); err != nil {
		r.n.log.Warn("could not remove a deleted quorum queue's Raft state", "group", r.id, "err", err)
	}
}

func (r *replicatedLog) forget() {
	r.n.mu.Lock()
	if q, ok := r.n.queues[r.id]; ok && q.g == r.g {
		delete(r.n.queues, r.id)
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
func (n *Node) rebalance() {
	defer n.wg.Done()
	t := time.NewTicker(rebalanceEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		var lead []queueGroup
		for _, q := range n.queues {
			if len(q.voters) > 0 && q.voters[0] != n.cfg.Self.ID && q.g.IsLeader() {
				lead = append(lead, q)
			}
		}
		n.mu.Unlock()
		for _, q := range lead {
			to := q.voters[0]
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
