package broker

import (
	"context"
	"fmt"
)

// ApplyReplicated applies a command the cluster's metadata group
// committed. Every node calls it for every committed command, in log
// order, from the group's one applying goroutine. It applies as Apply does
// but writes nothing to this node's definitions log (the Raft log is the
// log) and is deterministic: its effect on the definitions depends only on
// the definitions and c, never on this node — which node holds a queue's
// messages is in the command (QueueDef.Node).
//
// A command that was valid when proposed may find another state when
// applied: a queue declared twice at once from two nodes (the second
// finds it and changes nothing), a delete of what another delete removed,
// a binding to a queue deleted meanwhile. Such a command changes nothing
// and is no error; so does one applied twice (a log replayed after
// RestoreDefinitions), since declares keep what exists and a queue's
// delete names the queue by its id. The error is for this node alone
// failing (not one, today: a queue whose log cannot be opened keeps its
// messages in memory, logged, rather than be missing here).
//
// On this node, applying a queue's delete closes it (its messages go, its
// consumers are cancelled after the proposing client's reply) and, on the
// node that held them, removes its log.
func (b *Broker) ApplyReplicated(c Command) error {
	if p, ok := c.(Proposed); ok {
		if !b.meta.applied.first(p.ID) {
			// A copy of a proposal applied already (the cluster proposed
			// it again after a timeout): applying it could undo what
			// committed in between (meta_dedup.go).
			return nil
		}
		c = p.Command
	}
	switch c := c.(type) {
	case SetLimits:
		if err := b.limits.Set(c.Limits); err != nil {
			b.log.Warn("a replicated limit does not apply", "err", err)
		}
		return nil
	case AddVHost:
		_, err := b.addVHost(c.Name, true)
		return err
	}
	if isSecurity(c) {
		return b.applySecurity(c, true)
	}
	v, err := b.addVHost(commandVHost(c), true)
	if err != nil {
		return err
	}
	fx := &effects{replay: true, replicated: true}
	key := waitKey(c)
	var abandoned *DeclareQueue
	if d, ok := c.(DeclareQueue); ok && d.Node != 0 && d.Node == b.cfg.Replication.Node {
		// This node's queue, proposed by no waiting client of this run:
		// declared by a previous run of the node, or by a client of this
		// run told it failed (its proposal committed after the deadline).
		claimed, gaveUp := b.meta.claimDeclare(key)
		fx.orphan = !claimed
		if gaveUp && d.Exclusive {
			abandoned = &d
		}
	}
	v.mu.Lock()
	err = v.applyLocked(c, fx)
	if err == nil {
		err = v.dropEmptiedLocked(fx)
	}
	v.mu.Unlock()
	if err != nil {
		b.log.Debug("a replicated command changed nothing here", "command", fmt.Sprintf("%T", c), "err", err)
	}
	for _, id := range fx.dropLogs {
		if err := b.cfg.Storage.DeleteQueueLog(id); err != nil {
			b.log.Warn("could not remove a deleted queue's log", "id", id, "err", err)
		}
	}
	if abandoned != nil {
		// Its client was told the declare failed and may have closed its
		// connection (whose exclusive queues were deleted then): nobody
		// owns it, and it would stay locked to every connection until the
		// node restarts. Delete it — not from here: the metadata group
		// waits for this apply.
		go b.deleteAbandoned(DeleteQueue{VHost: abandoned.VHost, Name: abandoned.Name, ID: abandoned.ID})
	}
	if _, ok := c.(DeleteQueue); ok && b.meta.claim(key, fx.messages, fx.cancel) {
		return nil // this node's client cancels the consumers after its reply
	}
	fx.cancelAll()
	return nil
}

// deleteAbandoned proposes the deletion of an exclusive queue whose
// declare committed after its client was told it failed.
func (b *Broker) deleteAbandoned(d DeleteQueue) {
	fx := &effects{propose: d}
	if err := b.propose(context.Background(), fx); err != nil {
		b.log.Warn("could not delete an exclusive queue whose declare committed after its client gave up; it is deleted at the node's next start",
			"queue", d.Name, "vhost", d.VHost, "err", err)
		return
	}
	fx.cancelAll()
}

// DeleteLeftovers proposes the deletion of the queues this node held in a
// previous run that cannot outlive it: exclusive queues, whose owning
// connections are gone, and transient ones, whose messages were in its
// memory. The cluster layer calls it once this node's metadata has caught
// up after a restart, before it serves clients again; until then (and if
// it is never called) such queues stay in the metadata, locked to every
// connection if exclusive. It returns the first proposal's error and
// proposes the rest regardless.
func (b *Broker) DeleteLeftovers(ctx context.Context) error {
	_, err := b.proposeDeletes(ctx, func(q *Queue) bool { return q.orphan && transient(q) })
	return err
}

// transient: a queue that cannot outlive its node's process (exclusive
// or non-durable), as RabbitMQ deletes them when their node goes down.
func transient(q *Queue) bool { return q.cfg.Exclusive || !q.cfg.Durable }

// DeleteTransientOf proposes the deletion of the exclusive and
// non-durable queues held by node, which is down: their messages were in
// its memory and their owners' connections were on it, and while they
// stay bound every confirmed publish routed to them is nacked. The
// cluster's metadata leader calls it once node has been unreachable for a
// grace period, as RabbitMQ's rabbit_amqqueue:on_node_down deletes a down
// node's transient queues. Durable classic queues and streams are kept:
// they come back with their node. It returns the queues ("name (vhost v)")
// whose deletion committed, and the first proposal's error.
func (b *Broker) DeleteTransientOf(ctx context.Context, node uint64) ([]string, error) {
	if node == 0 || node == b.cfg.Replication.Node {
		return nil, nil
	}
	return b.proposeDeletes(ctx, func(q *Queue) bool { return q.node == node && transient(q) })
}

// ForgetNode proposes the deletion of every queue held by node, which has
// left the cluster for good: its classic queues, streams, exclusive and
// transient queues, whose messages were on it, as RabbitMQ's
// forget_cluster_node deletes a removed node's classic queues. Quorum
// queues (held by every node) are not its. It returns the queues
// ("name (vhost v)") whose deletion committed, and the first proposal's error
// (it proposes the rest regardless).
func (b *Broker) ForgetNode(ctx context.Context, node uint64) ([]string, error) {
	if node == 0 {
		return nil, nil
	}
	return b.proposeDeletes(ctx, func(q *Queue) bool { return q.node == node })
}

// proposeDeletes proposes, one by one, the deletion of every queue match
// selects, and returns those whose deletion committed.
func (b *Broker) proposeDeletes(ctx context.Context, match func(*Queue) bool) ([]string, error) {
	if !b.clustered() {
		return nil, nil
	}
	var first error
	var done []string
	for _, v := range b.VHosts() {
		var dels []DeleteQueue
		v.mu.Lock()
		for _, q := range v.queues.all() {
			if !q.cfg.Internal && match(q) {
				dels = append(dels, DeleteQueue{VHost: v.name, Name: q.cfg.Name, ID: q.id})
			}
		}
		v.mu.Unlock()
		for _, d := range dels {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			fx := &effects{propose: d}
			if err := b.propose(ctx, fx); err != nil {
				if first == nil {
					first = err
				}
			} else {
				done = append(done, fmt.Sprintf("%s (vhost %s)", d.Name, d.VHost))
			}
			fx.cancelAll()
		}
	}
	return done, first
}
