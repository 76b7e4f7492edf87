package cluster

import (
	"context"
	"time"
)

// The queues of a node that is down or gone (RabbitMQ's
// rabbit_amqqueue:on_node_down and forget_cluster_node): classic queues
// and streams live on the node that declared them (QueueDef.Node), so a
// down node takes its transient queues' messages and its exclusive queues'
// owners with it, and a removed node takes everything it held. The
// metadata leader deletes them cluster-wide; they would otherwise stay in
// the metadata, bound, and nack every confirmed publish routed to them.

// NodeQueues is what the node asks of the metadata's target (the broker)
// about another node's queues: proposing the deletion of its transient
// (exclusive or non-durable) queues, or of all of them. Each returns the
// queues ("name (vhost v)") whose deletion committed. A target without it
// (tests' fake brokers) has nothing deleted.
type NodeQueues interface {
	DeleteTransientOf(ctx context.Context, node uint64) ([]string, error)
	ForgetNode(ctx context.Context, node uint64) ([]string, error)
}

// DefaultDownGrace is how long the metadata leader must have heard nothing
// from a node before it deletes the node's transient queues: well past an
// election timeout (1 s) and forwarding's 5 s lease, so a loaded machine,
// a GC pause or a short network blip deletes nothing, yet short enough
// that a fanout bound to a dead node's transient queue (a Celery worker's
// pidbox) is not refused for long. RabbitMQ decides on its net_ticktime
// (60 s, a node is seen down after 45-75 s); a node that restarts sooner
// deletes its own transient queues anyway (Broker.DeleteLeftovers).
const DefaultDownGrace = 15 * time.Second

// sweepEvery is how often the metadata leader looks at the members: often
// enough that a crashed member's transient queues go within a fraction of
// a second (crashed.go); a look is a few map reads per member.
const sweepEvery = 200 * time.Millisecond

// sweeper is the metadata leader's view of down and removed members.
// Owned by the sweepQueues goroutine.
type sweeper struct {
	downSince map[uint64]time.Time // members not live, since
	swept     map[uint64]time.Time // members whose queues were last swept at
	removedAt map[uint64]time.Time // removed members, first seen removed at
	probes    *crashProbes         // disconnected members whose port refused a dial
}

// sweepQueues runs sweep until the node closes.
func (n *Node) sweepQueues() {
	s := &sweeper{downSince: map[uint64]time.Time{}, swept: map[uint64]time.Time{}, removedAt: map[uint64]time.Time{}, probes: newCrashProbes()}
	defer n.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-s.probes.kick: // a probe found a member's port refusing
		case <-n.lost: // a peer's connection closed
		}
		n.sweep(s)
	}
}

func (n *Node) nodeQueues() NodeQueues {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nq
}

// sweep deletes, when this node leads the metadata group, the transient
// queues of each member it has not heard from for DownGrace, and every
// queue of each removed member (a backstop for RemoveNode, which deletes
// them itself right after the tombstone). Only the leader of a majority
// can commit, so a node cut off on a minority side deletes nothing; the
// node that was down applies the deletes when it is back. A new leader
// starts counting afresh.
func (n *Node) sweep(s *sweeper) {
	g, nq := n.meta.Load(), n.nodeQueues()
	if g == nil || nq == nil || !g.IsLeader() {
		clear(s.downSince)
		clear(s.swept)
		clear(s.removedAt)
		s.probes.reset()
		return
	}
	now := n.cfg.Clock.Now()
	grace := n.cfg.DownGrace
	ms := n.memberState()
	for _, m := range ms.Members {
		if m.ID == n.cfg.Self.ID {
			continue
		}
		live, connected := n.host.NodeLive(m.ID), n.tr.Connected(m.ID)
		if connected {
			s.probes.forget(m.ID)
		}
		if live && connected {
			delete(s.downSince, m.ID)
			delete(s.swept, m.ID)
			continue
		}
		since, ok := s.downSince[m.ID]
		if !ok {
			since = now
			s.downSince[m.ID] = now
		}
		if at, ok := s.swept[m.ID]; ok && now.Sub(at) < grace {
			continue
		}
		crashed := !connected && n.crashed(s.probes, m, now)
		if !crashed && (live || now.Sub(since) < grace) {
			continue
		}
		ctx, cancel := n.stopContext(30 * time.Second)
		gone, err := nq.DeleteTransientOf(ctx, m.ID)
		cancel()
		if err == nil {
			s.swept[m.ID] = now
		}
		if len(gone) > 0 || err != nil {
			why := "node down: its exclusive and non-durable queues deleted cluster-wide"
			if crashed {
				why = "node crashed (its cluster port refuses connections): its exclusive and non-durable queues deleted cluster-wide"
			}
			n.log.Warn(why, "node", m.Name,
				"down_for", now.Sub(since).Round(time.Millisecond), "deleted", len(gone), "queues", sample(gone), "err", err)
		}
	}
	for _, r := range ms.Removed {
		at, ok := s.removedAt[r.ID]
		if !ok {
			s.removedAt[r.ID] = now
			continue
		}
		if now.Sub(at) < grace {
			continue
		}
		if at, ok := s.swept[r.ID]; ok && now.Sub(at) < 10*grace {
			continue
		}
		ctx, cancel := n.stopContext(time.Minute)
		n.forgetQueues(ctx, nq, r.Name, r.ID)
		cancel()
		s.swept[r.ID] = now
	}
}

// forgetQueues deletes the queues of the removed node name cluster-wide.
func (n *Node) forgetQueues(ctx context.Context, nq NodeQueues, name string, id uint64) error {
	gone, err := nq.ForgetNode(ctx, id)
	if len(gone) > 0 || err != nil {
		n.log.Warn("removed node: the classic queues and streams it held deleted cluster-wide", "node", name,
			"deleted", len(gone), "queues", sample(gone), "err", err)
	}
	return err
}

// stopContext is a context that ends after d or when the node closes
// (Close waits for the goroutines that use it).
func (n *Node) stopContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// sample is up to ten of names, for a log line.
func sample(names []string) []string {
	if len(names) > 10 {
		return append(names[:10:10], "…")
	}
	return names
}
