package broker

import (
	"fmt"
	"slices"
)

// effects gathers what applying commands left for after the vhost's lock:
// the log position to wait for, queue logs to remove once their deletion
// is durable, consumers to cancel, and auto-delete exchanges that lost a
// binding.
type effects struct {
	replay   bool   // applying stored commands: nothing is logged again
	seq      uint64 // last command appended to the definitions log
	logErr   error  // the first failed append
	dropLogs []string
	cancel   []func()
	emptied  []*Exchange
	messages int // queue: messages a deleted queue held; restore: recovered
	// Cluster (meta.go): the command a client's change is to propose,
	// instead of applying it here; whether the command being applied came
	// from the metadata group (ApplyReplicated); and whether a queue it
	// declares is this node's, left by a previous run (Queue.orphan).
	propose    Command
	replicated bool
	orphan     bool
}

// Apply changes the definitions by one command: it applies it, logs it if
// it is durable, and returns once it is durable. Recovery and the
// configuration call it; clients' declares validate first and then take
// the same path (commitLocked). It is this node's alone: in a cluster the
// metadata group applies with ApplyReplicated, and Apply logs nothing.
func (b *Broker) Apply(c Command) error {
	switch c := c.(type) {
	case SetLimits:
		return b.limits.Set(c.Limits)
	case AddVHost:
		_, err := b.addVHost(c.Name, false)
		return err
	}
	if isSecurity(c) {
		return b.applySecurity(c, false)
	}
	name := commandVHost(c)
	v := b.VHost(name)
	if v == nil {
		return errorf(KindNotFound, "no vhost '%s'", name)
	}
	fx := &effects{}
	v.mu.Lock()
	err := v.applyLocked(c, fx)
	v.mu.Unlock()
	if err != nil {
		return err
	}
	err = v.finish(fx)
	fx.cancelAll()
	return err
}

func commandVHost(c Command) string {
	switch c := c.(type) {
	case DeclareExchange:
		return c.VHost
	case DeleteExchange:
		return c.VHost
	case DeclareQueue:
		return c.VHost
	case DeleteQueue:
		return c.VHost
	case SetPolicy:
		return c.VHost
	case ClearPolicy:
		return c.VHost
	case Bind:
		return c.VHost
	case Unbind:
		return c.VHost
	}
	return ""
}

// commitLocked applies a client's validated command and then deletes the
// auto-delete exchanges it left without bindings, each as its own
// DeleteExchange command, so a replay never depends on bindings that were
// not logged (to transient queues). v.mu is held.
//
// In a cluster it proposes c instead (proposeLocked), unless c concerns a
// queue that stays on this node.
func (v *VHost) commitLocked(c Command, fx *effects) error {
	if v.broker.clustered() && !v.localOnlyLocked(c) {
		return v.proposeLocked(c, fx)
	}
	if err := v.applyLocked(c, fx); err != nil {
		return err
	}
	// A command that changed nothing (a binding that exists) still
	// answers only once what it found is durable.
	fx.seq = max(fx.seq, v.lastSeq)
	return v.dropEmptiedLocked(fx)
}

// dropEmptiedLocked deletes the auto-delete exchanges that applying left
// without bindings, each by a DeleteExchange of its own. v.mu is held.
func (v *VHost) dropEmptiedLocked(fx *effects) error {
	for len(fx.emptied) > 0 {
		x := fx.emptied[0]
		fx.emptied = fx.emptied[1:]
		if x.cfg.AutoDelete && len(x.bindings) == 0 && v.exchange(x.cfg.Name) == x {
			if err := v.applyLocked(DeleteExchange{VHost: v.name, Name: x.cfg.Name}, fx); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyLocked is the one function that changes a vhost's definitions. It
// is deterministic given the vhost's state and the command, and logs the
// command when it changed durable state. v.mu is held.
func (v *VHost) applyLocked(c Command, fx *effects) error {
	switch c := c.(type) {
	case DeclareExchange:
		if v.exchange(c.Name) != nil {
			return nil
		}
		kind, err := routingKind(c.ExchangeConfig)
		if err != nil {
			return err
		}
		x := newExchange(v, c.ExchangeConfig, kind)
		v.applyExchangePolicyLocked(x)
		v.exchanges.Store(c.Name, x)
		if c.Durable {
			v.logLocked(c, fx)
		}
	case DeleteExchange:
		x := v.exchange(c.Name)
		if x == nil || x.isDefault {
			return nil
		}
		for _, b := range slices.Clone(x.bindings) {
			v.removeBindingLocked(b, fx)
		}
		for _, b := range slices.Clone(x.inbound) {
			v.removeBindingLocked(b, fx)
		}
		if x.delayed != nil {
			x.delayed.stop()
		}
		v.exchanges.Delete(c.Name)
		if x.cfg.Durable {
			v.logLocked(c, fx)
		}
	case DeclareQueue:
		return v.applyDeclareQueueLocked(c, fx)
	case DeleteQueue:
		v.applyDeleteQueueLocked(c, fx)
	case SetPolicy, ClearPolicy:
		return v.applyPolicyLocked(c, fx)
	case Bind:
		b, err := v.resolveLocked(c.BindingDef)
		if err != nil {
			return err
		}
		added, err := v.addBindingLocked(b)
		if err != nil {
			return err
		}
		if added && b.durable() {
			v.logLocked(c, fx)
		}
	case Unbind:
		want, err := v.resolveLocked(c.BindingDef)
		if err != nil {
			return err
		}
		if b := findBindingLocked(want); b != nil {
			v.removeBindingLocked(b, fx)
			if b.durable() {
				v.logLocked(c, fx)
			}
		}
	default:
		return fmt.Errorf("broker: command %T does not apply to a vhost", c)
	}
	return nil
}

// resolveLocked finds the ends of a binding by name.
func (v *VHost) resolveLocked(d BindingDef) (*Binding, error) {
	src := v.exchange(d.Source)
	if src == nil {
		return nil, v.notFoundExchange(d.Source)
	}
	b := &Binding{Source: src, Key: d.Key, Args: v.internArgs(d.Args)}
	if d.DestIsExchange {
		if b.Exchange = v.exchange(d.Destination); b.Exchange == nil {
			return nil, v.notFoundExchange(d.Destination)
		}
	} else if b.Queue = v.queue(d.Destination); b.Queue == nil || (d.DestID != "" && d.DestID != b.Queue.id) {
		return nil, v.notFoundQueue(d.Destination) // gone, or another queue of the name
	}
	return b, nil
}

func (v *VHost) applyDeclareQueueLocked(c DeclareQueue, fx *effects) error {
	if v.queue(c.Name) != nil {
		return nil
	}
	args, err := parseQueueArgs(c.Name, v.name, c.Args)
	if err != nil {
		return err
	}
	if err := v.checkQueueLimitLocked(c.QueueConfig, fx); err != nil {
		return err
	}
	c.Args = v.internArgs(c.Args)
	if args.queueType == Quorum && fx.replicated {
		// What every node refuses alike is no declare at all, not a
		// queue this node failed to open (below).
		if err := checkQuorumLocked(v, c.QueueConfig, &args); err != nil {
			return err
		}
	}
	q := newQueue(v, c.QueueConfig, args)
	q.node, q.orphan = c.Node, fx.orphan
	v.applyQueuePolicyLocked(q, fx) // before its log opens: a stream's segment size may be a policy's
	if q.Remote() {
		// Another node holds its messages: this one knows it, no more.
		q.backend = newRemoteBackend(q)
	} else if err := v.attachLogLocked(q, c.ID); err != nil {
		if !fx.replicated {
			return err
		}
		// Every node must know the queue, whatever this one's disk
		// says, or their metadata would part: a classic queue lives on
		// in memory here; a stream (which is its log) or a quorum
		// queue (its Raft group) holds nothing here.
		v.broker.log.Error("a replicated queue cannot open its log on this node; it keeps no messages here beyond memory", "queue", c.Name, "err", err)
		if q.backend == nil {
			q.backend = newRemoteBackend(q)
		}
	}
	if q.id == "" {
		q.id = c.ID // a cluster's queue without a log: its identity (DeleteQueue.ID)
	}
	if q.log != nil {
		// A replayed declare reopens the queue's log: what a previous
		// run stored comes back. A new queue's log is empty.
		fx.messages += q.backend.restore()
	}
	if q.kind != Quorum {
		// A quorum queue's x-expires countdown starts on its leader
		// when the group opens there (quorum_leader.go); a touch here
		// would be one proposal per node per queue, at every start.
		q.backend.touch()
	}
	v.queues.store(c.Name, q)
	v.queueGen.Add(1)
	if !c.Internal {
		v.counted++
	}
	if c.Exclusive && !q.Remote() {
		if v.owned[c.Owner] == nil {
			v.owned[c.Owner] = map[string]struct{}{}
		}
		v.owned[c.Owner][c.Name] = struct{}{}
	}
	if q.log != nil || q.kind == Quorum {
		// A quorum queue's messages are in its Raft group; on a single
		// node its declaration is logged like any durable queue's.
		c.ID = q.id
		v.logLocked(c, fx)
	}
	return nil
}

func (v *VHost) applyDeleteQueueLocked(c DeleteQueue, fx *effects) {
	q := v.queue(c.Name)
	if q == nil || (c.ID != "" && c.ID != q.id) {
		return // gone, or another queue of the name: a cluster's delete names its queue
	}
	// A client's delete closed the queue already (deleteQueue); a replayed
	// one closes it here.
	n, consumers, _ := q.backend.close(false, false)
	fx.messages += n
	for _, b := range v.queueBindingsLocked(q) {
		v.removeBindingLocked(b, fx)
	}
	v.queues.delete(c.Name)
	v.queueGen.Add(1)
	if cb, ok := q.backend.(*classicBackend); ok {
		cb.noteGone() // once Live says it is gone
	}
	if !q.cfg.Internal {
		v.counted--
	}
	if q.cfg.Exclusive && !q.Remote() {
		delete(v.owned[q.cfg.Owner], c.Name)
		if len(v.owned[q.cfg.Owner]) == 0 {
			delete(v.owned, q.cfg.Owner)
		}
	}
	if q.log != nil {
		v.logLocked(c, fx)
		if l, ok := q.log.(*lazyLog); ok && l.closeUnopened() {
			// Never opened: nothing on disk to remove (lazylog.go).
		} else {
			fx.dropLogs = append(fx.dropLogs, q.id)
		}
	} else if q.kind == Quorum {
		v.logLocked(c, fx) // its group's state went with close
	}
	if len(consumers) > 0 {
		fx.cancel = append(fx.cancel, func() {
			for _, c := range consumers {
				c.Cancelled(q)
			}
		})
	}
}

// logLocked appends a durable command to the definitions log. v.mu is
// held, so the log's order is the order of application.
func (v *VHost) logLocked(c Command, fx *effects) {
	st := v.broker.cfg.Storage
	if fx.replay || st == nil || v.broker.clustered() {
		return // in a cluster the metadata group's log is the log
	}
	seq, err := st.AppendCommand(c)
	if err != nil {
		if fx.logErr == nil {
			fx.logErr = err
		}
		return
	}
	fx.seq = seq
	v.lastSeq = seq
}

// finish completes commands applied under v.mu, without it: it waits until
// the logged ones are durable, then removes the logs of deleted queues
// (only then: a crash before must find them) and offers a snapshot.
// Consumers are cancelled by the caller (fx.cancel) so an AMQP channel can
// reply first.
func (v *VHost) finish(fx *effects) error { return v.broker.finish(fx) }

// finish is VHost.finish for commands of no vhost (security.go).
func (b *Broker) finish(fx *effects) error {
	err := fx.logErr
	if err == nil && fx.seq > 0 {
		err = b.cfg.Storage.SyncCommands(fx.seq)
	}
	if err != nil {
		b.log.Error("storing definitions failed", "err", err)
		b.maybeSnapshot()
		return causedf(KindResourceError, err, "could not store definitions")
	}
	for _, id := range fx.dropLogs {
		if err := b.cfg.Storage.DeleteQueueLog(id); err != nil {
			b.log.Warn("could not remove a deleted queue's log", "id", id, "err", err)
		}
	}
	if fx.seq > 0 {
		b.maybeSnapshot()
	}
	return nil
}

// cancelAll runs the consumer cancellations fx gathered.
func (fx *effects) cancelAll() {
	for _, f := range fx.cancel {
		f()
	}
}
