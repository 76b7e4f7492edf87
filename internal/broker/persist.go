package broker

import (
	"errors"
	"fmt"
	"sort"
)

// Durable definitions: every change is a Command (command.go) applied by
// VHost.applyLocked under the vhost's lock, which appends the durable ones
// to the store's definitions log in that order. The public methods below
// validate, apply and then, without the lock, wait until the command is
// fsynced (group commit: concurrent declares share an fsync) before they
// return, so a declare-ok is sent only for a durable declare. When the log
// has grown enough, a snapshot of the whole node replaces it (snapshot).
// In a cluster the same methods propose the command instead and return
// once it is committed and applied here (VHost.run, meta.go).

// DeclareExchange creates an exchange or checks that an existing one is
// equivalent. With passive it only checks existence.
func (v *VHost) DeclareExchange(cfg ExchangeConfig, passive bool) (*Exchange, error) {
	var x *Exchange
	_, err := v.run(true, func(fx *effects) (err error) {
		x, err = v.declareExchange(cfg, passive, fx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return x, nil
}

// DeleteExchange removes an exchange and its bindings. Deleting a missing
// exchange succeeds, as in RabbitMQ.
func (v *VHost) DeleteExchange(name string, ifUnused bool) error {
	_, err := v.run(false, func(fx *effects) error { return v.deleteExchange(name, ifUnused, fx) })
	return err
}

// DeclareQueue creates a queue or checks that an existing one is
// equivalent. An empty name gets a server-generated "amq.gen-…" name. conn
// identifies the declaring connection for exclusive queues. A durable,
// non-exclusive queue gets a log in storage and survives restarts.
func (v *VHost) DeclareQueue(cfg QueueConfig, passive bool, conn uint64) (*Queue, error) {
	return v.declareQueueRun(cfg, passive, false, conn)
}

// ServerQueueName makes a name for a server-named queue ("amq.gen-…"), for
// a protocol adapter that checks permissions on the name before declaring
// (DeclareServerNamed).
func ServerQueueName() string { return "amq.gen-" + randomName() }

// DeclareServerNamed is DeclareQueue (not passive); serverNamed says
// cfg.Name came from ServerQueueName, so its reserved "amq." prefix is
// allowed.
func (v *VHost) DeclareServerNamed(cfg QueueConfig, serverNamed bool, conn uint64) (*Queue, error) {
	return v.declareQueueRun(cfg, false, serverNamed, conn)
}

func (v *VHost) declareQueueRun(cfg QueueConfig, passive, named bool, conn uint64) (*Queue, error) {
	var q *Queue
	_, err := v.run(true, func(fx *effects) (err error) {
		q, err = v.declareQueue(cfg, passive, named, conn, fx)
		if d, ok := fx.propose.(DeclareQueue); ok {
			cfg.Name, named = d.Name, true // a server-named queue keeps its name for the recheck
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

// DeleteQueue deletes a queue, its messages, its log and its bindings,
// cancelling its consumers, and returns how many messages it held.
// Deleting a missing queue succeeds with 0, as in RabbitMQ. conn 0 is the
// broker itself.
func (v *VHost) DeleteQueue(name string, ifUnused, ifEmpty bool, conn uint64) (int, error) {
	n, cancel, err := v.DeleteQueueThenCancel(name, ifUnused, ifEmpty, conn)
	cancel()
	return n, err
}

// DeleteQueueThenCancel is DeleteQueue leaving the consumers' cancellation to
// the caller: cancel (never nil) tells them. An AMQP channel answers
// delete-ok first, as RabbitMQ orders them, so a client that closes once its
// consumer is cancelled still gets the reply.
func (v *VHost) DeleteQueueThenCancel(name string, ifUnused, ifEmpty bool, conn uint64) (int, func(), error) {
	fx, err := v.run(false, func(fx *effects) error { return v.deleteQueue(name, ifUnused, ifEmpty, conn, nil, fx) })
	if err != nil {
		return 0, fx.cancelAll, err
	}
	return fx.messages, fx.cancelAll, nil
}

// BindQueue binds queue to exchange with key and args. Binding twice is a
// no-op.
func (v *VHost) BindQueue(queue, exchange, key string, args map[string]any, conn uint64) error {
	_, err := v.run(true, func(fx *effects) error { return v.bindQueue(queue, exchange, key, args, conn, fx) })
	return err
}

// UnbindQueue removes a queue binding; a missing binding is not an error.
func (v *VHost) UnbindQueue(queue, exchange, key string, args map[string]any, conn uint64) error {
	_, err := v.run(false, func(fx *effects) error { return v.unbindQueue(queue, exchange, key, args, conn, fx) })
	return err
}

// BindExchange binds destination to source (exchange-to-exchange binding,
// a RabbitMQ extension).
func (v *VHost) BindExchange(destination, source, key string, args map[string]any) error {
	_, err := v.run(true, func(fx *effects) error { return v.bindExchange(destination, source, key, args, fx) })
	return err
}

// UnbindExchange removes an exchange-to-exchange binding.
func (v *VHost) UnbindExchange(destination, source, key string, args map[string]any) error {
	_, err := v.run(false, func(fx *effects) error { return v.unbindExchange(destination, source, key, args, fx) })
	return err
}

// maybeSnapshot writes a snapshot when the store says the log is due one.
// One at a time: a caller that finds one running leaves it to that one.
func (b *Broker) maybeSnapshot() {
	st := b.cfg.Storage
	if st == nil || !st.SnapshotDue() || !b.snapMu.TryLock() {
		return
	}
	defer b.snapMu.Unlock()
	if err := b.snapshot(); err != nil {
		b.log.Error("writing the definitions snapshot failed", "err", err)
	}
}

// snapshot saves the whole definitions, holding every vhost's lock so no
// command is applied (or logged) meanwhile: the snapshot is exactly the
// state after the last logged command. Lock order: b.mu, then each v.mu by
// name.
func (b *Broker) snapshot() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	vs := make([]*VHost, 0, len(b.vhosts))
	for _, v := range b.vhosts {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].name < vs[j].name })
	d := &Definitions{}
	for _, v := range vs {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.definitionsLocked(d)
	}
	b.securityDefinitions(d)
	return b.cfg.Storage.SaveDefinitions(d)
}

// isDurableQueue says whether a queue is kept across restarts: durable and
// owned by no connection.
func isDurableQueue(q *Queue) bool { return q.cfg.Durable && !q.cfg.Exclusive && !q.cfg.Internal }

func (b *Binding) durable() bool {
	if !b.Source.cfg.Durable {
		return false
	}
	if b.Queue != nil {
		return isDurableQueue(b.Queue)
	}
	return b.Exchange.cfg.Durable
}

// Definitions returns the node's durable objects.
func (b *Broker) Definitions() *Definitions {
	d := &Definitions{}
	for _, v := range b.VHosts() {
		v.mu.Lock()
		v.definitionsLocked(d)
		v.mu.Unlock()
	}
	return d
}

// definitionsLocked adds the vhost's durable objects to d. v.mu is held.
func (v *VHost) definitionsLocked(d *Definitions) {
	d.VHosts = append(d.VHosts, v.name)
	d.Policies = append(d.Policies, v.policiesLocked(false)...)
	d.OperatorPolicies = append(d.OperatorPolicies, v.policiesLocked(true)...)
	v.exchanges.Range(func(_, xv any) bool {
		x := xv.(*Exchange)
		if x.cfg.Durable && !x.isDefault && !reservedName(x.cfg.Name) {
			d.Exchanges = append(d.Exchanges, ExchangeDef{VHost: v.name, ExchangeConfig: x.cfg})
		}
		for _, bd := range x.bindings {
			if bd.durable() {
				def := BindingDef{VHost: v.name, Source: x.cfg.Name, Key: bd.Key, Args: bd.Args}
				if bd.Queue != nil {
					def.Destination = bd.Queue.cfg.Name
				} else {
					def.Destination, def.DestIsExchange = bd.Exchange.cfg.Name, true
				}
				d.Bindings = append(d.Bindings, def)
			}
		}
		return true
	})
	for _, q := range v.queues.all() {
		if isDurableQueue(q) {
			d.Queues = append(d.Queues, QueueDef{VHost: v.name, ID: q.id, Node: q.node, QueueConfig: q.cfg})
		}
	}
}

// attachLogLocked gives a new durable queue or stream its log. v.mu is held.
func (v *VHost) attachLogLocked(q *Queue, id string) error {
	if q.kind == Quorum {
		return v.attachQuorumLocked(q, id) // quorum_args.go: a Raft group, not a local log
	}
	st := v.broker.cfg.Storage
	if q.kind == Stream {
		if st == nil || !q.cfg.Durable || q.cfg.Exclusive || q.cfg.AutoDelete {
			return errorf(KindPreconditionFailed, "invalid arguments for stream '%s' in vhost '%s': a stream must be durable, not exclusive and not auto-delete", q.cfg.Name, v.name)
		}
	}
	if st == nil || !isDurableQueue(q) {
		return nil
	}
	fresh := id == ""
	if fresh {
		id = NewQueueID()
	}
	if q.kind == Stream {
		l, err := st.StreamLog(id, q.cur().segmentSize)
		if err != nil {
			return causedf(KindResourceError, err, "could not open the log of stream '%s'", q.cfg.Name)
		}
		q.id, q.log = id, l
		q.backend = newStreamBackend(q, l)
		return nil
	}
	if _, ok := q.backend.(*classicBackend); ok && (fresh || !logExists(st, id)) {
		// Nothing stored yet: the store's log opens with the first
		// message (lazylog.go).
		q.id, q.log = id, &lazyLog{q: q}
		return nil
	}
	l, err := st.QueueLog(id)
	if err != nil {
		return causedf(KindResourceError, err, "could not open the log of queue '%s'", q.cfg.Name)
	}
	q.id, q.log = id, l
	if n, ok := l.(refusalNotifier); ok {
		if c, ok := q.backend.(*classicBackend); ok {
			n.OnRefused(c.refused)
		}
	}
	return nil
}

// logExists says whether st holds anything of queue id's log; a storage
// that cannot tell is asked to open it.
func logExists(st Storage, id string) bool {
	p, ok := st.(logProbe)
	return !ok || p.QueueLogExists(id)
}

// Restore recreates a stored snapshot of the definitions and the messages
// of durable queues at start-up, before any client connects, by applying
// each object as a command; Replay then applies what was logged since.
func (b *Broker) Restore(d *Definitions) error {
	fx := &effects{replay: true}
	for _, name := range d.VHosts {
		if _, err := b.addVHost(name, true); err != nil {
			return err
		}
	}
	for _, c := range policyCommands(d) {
		if err := b.replay(c, fx); err != nil {
			b.log.Warn("dropping a stored policy", "err", err)
		}
	}
	for _, xd := range d.Exchanges {
		if err := b.replay(DeclareExchange{xd}, fx); err != nil {
			return fmt.Errorf("broker: restoring exchange %s: %w", xd.Name, err)
		}
	}
	for _, qd := range d.Queues {
		if err := b.replay(DeclareQueue{qd}, fx); err != nil {
			return fmt.Errorf("broker: restoring queue %s: %w", qd.Name, err)
		}
	}
	for _, bd := range d.Bindings {
		if err := b.replay(Bind{bd}, fx); err != nil {
			b.log.Warn("dropping a stored binding", "vhost", bd.VHost, "source", bd.Source, "destination", bd.Destination, "err", err)
		}
	}
	for _, c := range securityCommands(d) {
		if err := b.applySecurity(c, true); err != nil {
			return err
		}
	}
	fx.cancelAll() // what applying policies left (nothing is consumed yet)
	b.log.Info("restored definitions", "vhosts", len(d.VHosts), "exchanges", len(d.Exchanges),
		"queues", len(d.Queues), "bindings", len(d.Bindings), "messages", fx.messages)
	return nil
}

// Replay applies the commands logged since the snapshot Restore loaded, in
// order, and then, if there were any, writes a new snapshot so the next
// start replays nothing.
func (b *Broker) Replay(cmds []Command) error {
	fx := &effects{replay: true}
	for _, c := range cmds {
		if err := b.replay(c, fx); err != nil {
			switch c.(type) {
			case DeclareExchange, DeclareQueue:
				return fmt.Errorf("broker: replaying %T: %w", c, err)
			}
			b.log.Warn("skipping a logged command", "command", fmt.Sprintf("%T", c), "err", err)
		}
	}
	for _, id := range fx.dropLogs {
		// The deletion is in the log, so durable: the files can go.
		if err := b.cfg.Storage.DeleteQueueLog(id); err != nil {
			b.log.Warn("could not remove a deleted queue's log", "id", id, "err", err)
		}
	}
	fx.cancelAll() // what applying policies left (nothing is consumed yet)
	b.log.Info("replayed the definitions log", "commands", len(cmds), "messages", fx.messages)
	if len(cmds) == 0 || b.cfg.Storage == nil {
		return nil
	}
	b.snapMu.Lock()
	defer b.snapMu.Unlock()
	if err := b.snapshot(); err != nil {
		// The logs stay and are replayed again next time (a full disk).
		b.log.Warn("could not write the definitions snapshot after replay", "err", err)
	}
	return nil
}

// replay applies one stored command without logging it again.
func (b *Broker) replay(c Command, fx *effects) error {
	if a, ok := c.(AddVHost); ok {
		_, err := b.addVHost(a.Name, true)
		return err
	}
	if isSecurity(c) {
		return b.applySecurity(c, true)
	}
	v, err := b.addVHost(commandVHost(c), true)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.applyLocked(c, fx)
}

// deleteOwn deletes q itself, not a queue of the same name declared since,
// for the broker's own reasons (x-expires, auto-delete, its owner gone).
// ifUnused keeps a queue that gained a consumer meanwhile.
//
// In a cluster this node proposes the deletion of its own queues only: a
// remote queue's timers and consumers are on its node, which deletes it.
func (v *VHost) deleteOwn(q *Queue, ifUnused bool) {
	fx, err := v.run(false, func(fx *effects) error { return v.deleteQueue(q.cfg.Name, ifUnused, false, 0, q, fx) })
	var be *Error
	if err != nil && errors.As(err, &be) && be.Kind == KindPreconditionFailed {
		return // in use again: it stays
	}
	if err != nil {
		v.broker.log.Warn("could not store the deletion of a queue", "queue", q.cfg.Name, "err", err)
	}
	fx.cancelAll()
}
