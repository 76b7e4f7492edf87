package raftnode

import (
	"context"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// AddVoter adds node as a voter (or promotes it, if it is a learner) and
// waits until this replica has applied the change.
func (g *Group) AddVoter(ctx context.Context, node NodeID) error {
	return g.changeConf(ctx, raftpb.ConfChangeAddNode, node)
}

// AddLearner adds node as a non-voting learner.
func (g *Group) AddLearner(ctx context.Context, node NodeID) error {
	return g.changeConf(ctx, raftpb.ConfChangeAddLearnerNode, node)
}

// Promote makes the learner node a voter.
func (g *Group) Promote(ctx context.Context, node NodeID) error {
	return g.changeConf(ctx, raftpb.ConfChangeAddNode, node)
}

// RemoveNode removes node from the group; it stops receiving entries. The
// removed replica's own Group keeps running, idle, until its owner calls
// Delete.
func (g *Group) RemoveNode(ctx context.Context, node NodeID) error {
	return g.changeConf(ctx, raftpb.ConfChangeRemoveNode, node)
}

// changeConf proposes one configuration change (a simple change: Raft
// applies it without joint consensus) and waits for its apply here. Raft
// refuses a change while another is pending or one that would leave no
// voter; such a proposal fails with ErrProposalTimeout.
func (g *Group) changeConf(ctx context.Context, typ raftpb.ConfChangeType, node NodeID) error {
	seq := g.seq.Add(1)
	cc := &raftpb.ConfChangeV2{
		Changes: []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: new(node)}},
		Context: encodeHeader(g.h.cfg.ID, seq, nil),
	}
	ch := make(chan error, 1)
	g.enqueue(proposal{seq: seq, cc: cc, start: time.Now(), done: func(_ any, err error) { ch <- err }})
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxTransferAttempts bounds TransferLeadership's retries (Raft abandons a
// transfer after an election timeout, e.g. when the target lags).
const maxTransferAttempts = 5

// TransferLeadership asks the leader to hand leadership to node and waits
// until this replica sees node lead, ctx ends, or the attempts run out.
func (g *Group) TransferLeadership(ctx context.Context, to NodeID) error {
	wait := g.h.cfg.TickInterval * time.Duration(2*g.h.cfg.ElectionTicks)
	for range maxTransferAttempts {
		if g.Leader() == to {
			return nil
		}
		g.mu.Lock()
		changed := g.leaderCh
		g.mu.Unlock()
		if !g.submit(func() { g.noteTransfer(to); g.rn.TransferLeader(to) }) {
			return ErrClosed
		}
		timeout := make(chan struct{})
		t := g.h.cfg.Clock.AfterFunc(wait, func() { close(timeout) })
		for g.Leader() != to {
			select {
			case <-changed:
				g.mu.Lock()
				changed = g.leaderCh
				g.mu.Unlock()
				continue
			case <-timeout:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-g.done:
				t.Stop()
				return ErrClosed
			}
			break
		}
		t.Stop()
	}
	if g.Leader() == to {
		return nil
	}
	return ErrTransferFailed
}

// WaitLeader waits until the group knows a leader and returns it.
func (g *Group) WaitLeader(ctx context.Context) (NodeID, error) {
	for {
		g.mu.Lock()
		changed := g.leaderCh
		g.mu.Unlock()
		if l := g.Leader(); l != 0 {
			return l, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-g.done:
			return 0, ErrClosed
		}
	}
}
