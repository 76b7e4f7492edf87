package broker

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/route"
)

// Definitions in a cluster (Config.Replication.Metadata set): a client's
// change is validated on its node as on a single node (access, reserved
// names, equivalence, arguments), under the vhost's lock, but instead of
// being applied there it becomes a command the vhost leaves in
// effects.propose (commitLocked). Without the lock the command is proposed
// to the metadata group, and Propose returns once it is committed and
// applied on this node by ApplyReplicated (meta_apply.go) — the same call,
// in the same order, that every node makes. A declare then runs its
// validation again against what applying left: if another node's
// conflicting declare was committed first, the client gets the
// equivalence error RabbitMQ would give it, and it gets declare-ok only
// for a declare that is in the committed metadata.
//
// What stays local: a direct reply-to pseudo queue (Internal), which
// lives and dies with its connection and is found by name only on its
// node; Apply, which the configuration and a single node's recovery use;
// and the definitions log, which the cluster's Raft log replaces (nothing
// is appended to it). Everything else, transient and exclusive queues
// included, is replicated: see docs/design/replication.md, "Metadata".

// proposeTimeout bounds one proposal: a declare without a quorum fails
// after it rather than waiting forever.
const proposeTimeout = 15 * time.Second

// maxProposeRounds bounds how often a declare proposes again when what it
// proposed was deleted before it could look (another client deleting it
// at once); past it the declare fails.
const maxProposeRounds = 3

func (b *Broker) clustered() bool { return b.cfg.Replication.Metadata != nil }

// run performs a client's definition change. op validates it under v.mu
// and, on a single node, applies it; in a cluster it leaves the command in
// fx.propose instead (or nothing, when the change is already there). A
// proposed command is replicated and, with recheck (declares, binds), op
// runs again against the state applying it left, so the caller's answer
// is the committed state's.
func (v *VHost) run(recheck bool, op func(fx *effects) error) (*effects, error) {
	for round := 0; ; round++ {
		fx := &effects{}
		if err := op(fx); err != nil {
			return fx, err
		}
		if fx.propose == nil {
			return fx, v.finish(fx)
		}
		if round == maxProposeRounds {
			return fx, errorf(KindResourceError, "definitions in vhost '%s' changed concurrently; try again", v.name)
		}
		if err := v.broker.propose(context.Background(), fx); err != nil {
			return fx, err
		}
		if !recheck {
			return fx, nil
		}
	}
}

// propose replicates fx.propose and returns once this node applied it.
// For a queue's declare or delete it waits under the queue's id, so that
// applying it hands back what this node's client needs: the messages a
// deleted queue held and its consumers to cancel after the reply.
func (b *Broker) propose(ctx context.Context, fx *effects) error {
	key := waitKey(fx.propose)
	var w *metaWaiter
	if key != "" {
		w = b.meta.add(key)
		defer b.meta.remove(key, w)
	}
	ctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	// Tagged, so that a copy the cluster proposes again is applied once
	// (meta_dedup.go).
	err := b.cfg.Replication.Metadata.Propose(ctx, Proposed{ID: newProposalID(), Command: fx.propose})
	cancel()
	if w != nil {
		b.meta.mu.Lock()
		applied := w.applied
		fx.messages, fx.cancel = w.messages, w.cancel
		if !applied && err != nil {
			// The client is told it failed, but the proposal may still
			// commit: applying it then finds this mark (claimDeclare).
			b.meta.abandonLocked(key)
		}
		b.meta.mu.Unlock()
		if applied {
			return nil // applied here: a late error (ctx ended meanwhile) changes nothing
		}
	}
	if err != nil {
		return causedf(KindResourceError, err, "could not replicate the definition change")
	}
	return nil
}

// addVHostReplicated proposes a new vhost and returns it once applied.
func (b *Broker) addVHostReplicated(name string) *VHost {
	if v := b.VHost(name); v != nil {
		return v
	}
	if err := b.propose(context.Background(), &effects{propose: AddVHost{Name: name}}); err != nil {
		b.log.Error("replicating a new vhost failed", "vhost", name, "err", err)
	}
	return b.VHost(name)
}

// proposeLocked is commitLocked in a cluster: it checks what applying c
// would check (so a proposal is valid when made), completes it (a queue's
// id and node) and leaves it in fx.propose, unless it changes nothing.
// v.mu is held.
func (v *VHost) proposeLocked(c Command, fx *effects) error {
	switch d := c.(type) {
	case DeclareExchange:
		if _, err := routingKind(d.ExchangeConfig); err != nil {
			return err
		}
	case DeclareQueue:
		args, err := parseQueueArgs(d.Name, v.name, d.Args)
		if err != nil {
			return err
		}
		if args.queueType == Stream && (v.broker.cfg.Storage == nil || !d.Durable || d.Exclusive || d.AutoDelete) {
			return errorf(KindPreconditionFailed, "invalid arguments for stream '%s' in vhost '%s': a stream must be durable, not exclusive and not auto-delete", d.Name, v.name)
		}
		if args.queueType == Quorum {
			if err := checkQuorumLocked(v, d.QueueConfig, &args); err != nil {
				return err
			}
		}
		// Every replicated queue has an id, durable or not: a delete
		// names the one queue it means by it (DeleteQueue.ID).
		d.ID = NewQueueID()
		if local, ok := v.broker.cfg.Replication.Quorum.(LocalQuorumIDs); ok && args.queueType == Quorum && clientLocal(d.Args) {
			d.ID = local.LocalQueueID()
		}
		if args.queueType != Quorum {
			d.Node = v.broker.cfg.Replication.Node
		}
		c = d
	case DeleteQueue:
		q := v.queue(d.Name)
		if q == nil {
			return nil
		}
		d.ID = q.id
		c = d
	case Bind:
		b, err := v.resolveLocked(d.BindingDef)
		if err != nil {
			return err
		}
		if b.Queue != nil {
			d.DestID = b.Queue.id
			c = d
		}
		if b.Source.kind == route.Headers {
			if err := route.ValidMatch(b.Args); err != nil {
				return errorf(KindPreconditionFailed, "%v", err)
			}
		}
		if hasBindingLocked(b) {
			return nil
		}
	case Unbind:
		b, err := v.resolveLocked(d.BindingDef)
		if err != nil {
			return err
		}
		if b.Queue != nil {
			d.DestID = b.Queue.id
			c = d
		}
		if !hasBindingLocked(b) {
			return nil
		}
	}
	fx.propose = c
	return nil
}

// localOnlyLocked says c concerns a queue that stays on this node: a
// direct reply-to pseudo queue (Internal), which lives and dies with its
// connection. v.mu is held.
func (v *VHost) localOnlyLocked(c Command) bool {
	switch c := c.(type) {
	case DeclareQueue:
		return c.Internal
	case DeleteQueue:
		q := v.queue(c.Name)
		return q != nil && q.cfg.Internal
	}
	return false
}

// checkDeleteLocked is a cluster's if-unused and if-empty check of a
// client's queue delete. On a single node the backend checks and closes
// the queue at once (close); in a cluster the queue closes when the
// delete is applied, so a consumer that arrives between the check and
// then is cancelled, as it would be by any delete. A remote queue's
// consumers and messages are on its node: its counts (rc) were fetched
// from there before v.mu was taken (remoteCountsOf), because asking waits
// on the network and the metadata group's apply needs v.mu. v.mu is held.
func checkDeleteLocked(q *Queue, ifUnused, ifEmpty bool, rc *remoteCounts) error {
	if !ifUnused && !ifEmpty {
		return nil
	}
	var ready, consumers int
	if q.Remote() {
		if rc == nil || rc.q != q {
			return nil // not reached: deleteQueue fetched q's
		}
		ready, consumers = rc.ready, rc.consumers
	} else {
		ready, _, consumers = q.backend.counts()
	}
	if ifUnused && consumers > 0 {
		return errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' in use", q.cfg.Name, q.vhost.name)
	}
	if ifEmpty && ready > 0 {
		return errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' is not empty", q.cfg.Name, q.vhost.name)
	}
	return nil
}

// remoteCounts are a remote queue's counts as its node last reported them
// (Forwarder.Counts: at most CountsMaxAge old, 0 when it never answered).
type remoteCounts struct {
	q                *Queue
	ready, consumers int
}

// remoteCountsOf asks q's node for q's counts when q is remote, and
// returns nil otherwise. It may wait on the network: never call it with
// v.mu held.
func remoteCountsOf(q *Queue) *remoteCounts {
	if q == nil || !q.Remote() {
		return nil
	}
	ready, _, consumers := q.backend.counts()
	return &remoteCounts{q: q, ready: ready, consumers: consumers}
}

// metaWaiters are this node's proposals of queue declares and deletes
// waiting for their application, by waitKey. Applying a delete hands its
// waiter the messages and consumers of the queue it deleted; applying a
// declare of this node's queue with no waiter marks the queue an orphan
// (declared by a previous run of this node, DeleteLeftovers).
type metaWaiters struct {
	mu      sync.Mutex
	waiting map[string][]*metaWaiter
	// applied are the proposals applied last, so a copy of one is not
	// applied again (meta_dedup.go).
	applied proposalSet
	// abandoned are the waitKeys of this run's declares whose client was
	// told they failed (no commit in time) and that have not applied.
	abandoned map[string]struct{}
}

// maxAbandoned bounds the abandoned declares remembered: a declare that
// has not committed long after its deadline will not (leader change).
const maxAbandoned = 4096

// abandonLocked records that the declare under key was given up by its
// client. m.mu is held.
func (m *metaWaiters) abandonLocked(key string) {
	if !strings.HasPrefix(key, "declare\x00") {
		return
	}
	if m.abandoned == nil {
		m.abandoned = map[string]struct{}{}
	}
	if len(m.abandoned) >= maxAbandoned {
		for k := range m.abandoned {
			delete(m.abandoned, k)
			break
		}
	}
	m.abandoned[key] = struct{}{}
}

// claimDeclare is claim for the declare of a queue of this node: claimed
// when a waiting client takes it; abandoned when none does because its
// client gave up on it (then the queue's owner never learnt it exists).
// Neither: a declare of this node's previous run (an orphan).
func (m *metaWaiters) claimDeclare(key string) (claimed, abandoned bool) {
	if m.claim(key, 0, nil) {
		return true, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, abandoned = m.abandoned[key]
	delete(m.abandoned, key)
	return false, abandoned
}

type metaWaiter struct {
	applied  bool
	messages int
	cancel   []func()
}

// waitKey names the queue a declare or delete is about; "" for other
// commands.
func waitKey(c Command) string {
	switch c := c.(type) {
	case DeclareQueue:
		if c.ID != "" {
			return "declare\x00" + c.VHost + "\x00" + c.ID
		}
	case DeleteQueue:
		if c.ID != "" {
			return "delete\x00" + c.VHost + "\x00" + c.ID
		}
	}
	return ""
}

func (m *metaWaiters) add(key string) *metaWaiter {
	w := &metaWaiter{}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiting == nil {
		m.waiting = map[string][]*metaWaiter{}
	}
	m.waiting[key] = append(m.waiting[key], w)
	return w
}

func (m *metaWaiters) remove(key string, w *metaWaiter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	left := slices.DeleteFunc(m.waiting[key], func(o *metaWaiter) bool { return o == w })
	if len(left) == 0 {
		delete(m.waiting, key)
	} else {
		m.waiting[key] = left
	}
}

// claim hands what applying the command under key left to the first of
// its waiters not yet served and reports whether there was one: a second
// delete of the same queue from this node finds it gone and gets nothing.
func (m *metaWaiters) claim(key string, messages int, cancel []func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range m.waiting[key] {
		if !w.applied {
			w.applied, w.messages, w.cancel = true, messages, cancel
			return true
		}
	}
	return false
}
