package broker

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"sync"
	"sync/atomic"
)

// VHost is a virtual host: its own namespace of exchanges and queues.
type VHost struct {
	name   string
	broker *Broker

	mu        sync.Mutex                     // serialises declarations, deletions and binding changes
	exchanges sync.Map                       // name → *Exchange; read without mu on the publish path
	queues    queueMap                       // name → *Queue; read without mu
	queueGen  atomic.Uint64                  // moves with every queue added or removed (QueueGeneration)
	owned     map[uint64]map[string]struct{} // connection → its exclusive queues; guarded by mu
	// lastSeq is the definitions log position of the vhost's last logged
	// command; guarded by mu. A reply that depends on an existing object
	// waits for it too, so no client is told of a declare that a crash
	// could still undo.
	lastSeq uint64
	// closers are the open connections to close if the vhost is deleted
	// (security.go).
	closers closers
	// policies are the vhost's policies and operator policies; guarded
	// by mu (policy_apply.go).
	policies vhostPolicies
	// counted is how many queues the vhost's max-queues counts (every
	// queue but the node-local direct reply-to pseudo queues, so every
	// node of a cluster counts alike); guarded by mu (queue_limit.go).
	counted int
	// interned indexes argument tables shared between queues and
	// bindings (args_intern.go); guarded by mu.
	interned map[string]map[string]any
}

// QueueGeneration moves whenever a queue is added to or removed from the
// vhost, so a reader may keep a sorted copy of Queues until it does (the
// management API's queue pages). Read it before Queues: a change between
// the two shows as a newer generation next time.
func (v *VHost) QueueGeneration() uint64 { return v.queueGen.Load() }

// Name returns the vhost's name.
func (v *VHost) Name() string { return v.name }

func newVHost(b *Broker, name string) *VHost {
	v := &VHost{name: name, broker: b, owned: map[uint64]map[string]struct{}{}}
	v.mu.Lock()
	defer v.mu.Unlock()
	def := newExchange(v, ExchangeConfig{Name: "", Type: TypeDirect, Durable: true}, TypeDirect)
	v.exchanges.Store("", def)
	for _, x := range []ExchangeConfig{
		{Name: "amq.direct", Type: TypeDirect},
		{Name: "amq.fanout", Type: TypeFanout},
		{Name: "amq.topic", Type: TypeTopic},
		{Name: "amq.headers", Type: TypeHeaders},
		{Name: "amq.match", Type: TypeHeaders},
	} {
		x.Durable = true
		kind, _ := routingKind(x)
		v.exchanges.Store(x.Name, newExchange(v, x, kind))
	}
	return v
}

func (v *VHost) exchange(name string) *Exchange {
	x, ok := v.exchanges.Load(name)
	if !ok {
		return nil
	}
	return x.(*Exchange)
}

func (v *VHost) queue(name string) *Queue {
	return v.queues.load(name)
}

func (v *VHost) notFoundExchange(name string) error {
	return errorf(KindNotFound, "no exchange '%s' in vhost '%s'", name, v.name)
}

func (v *VHost) notFoundQueue(name string) error {
	return errorf(KindNotFound, "no queue '%s' in vhost '%s'", name, v.name)
}

// Exchange returns the named exchange or ErrNotFound.
func (v *VHost) Exchange(name string) (*Exchange, error) {
	if x := v.exchange(name); x != nil {
		return x, nil
	}
	return nil, v.notFoundExchange(name)
}

// Exchanges lists the exchanges.
func (v *VHost) Exchanges() []*Exchange {
	var out []*Exchange
	v.exchanges.Range(func(_, x any) bool { out = append(out, x.(*Exchange)); return true })
	return out
}

// Queues lists the queues, internal ones excluded.
func (v *VHost) Queues() []*Queue {
	out := v.queues.all()
	return slices.DeleteFunc(out, func(q *Queue) bool { return q.cfg.Internal })
}

// declareExchange validates a declare and applies it. With passive it only
// checks existence.
func (v *VHost) declareExchange(cfg ExchangeConfig, passive bool, fx *effects) (*Exchange, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x := v.exchange(cfg.Name)
	if passive {
		if x == nil {
			return nil, v.notFoundExchange(cfg.Name)
		}
		return x, nil
	}
	if cfg.Name == "" || (reservedName(cfg.Name) && x == nil) {
		return nil, errorf(KindAccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", cfg.Name)
	}
	if x != nil {
		fx.seq = v.lastSeq
		return x, v.equivalentExchange(x, cfg)
	}
	if err := checkExchangeArgs(cfg); err != nil {
		return nil, err
	}
	if err := v.commitLocked(DeclareExchange{ExchangeDef{VHost: v.name, ExchangeConfig: cfg}}, fx); err != nil {
		return nil, err
	}
	return v.exchange(cfg.Name), nil
}

func (v *VHost) equivalentExchange(x *Exchange, cfg ExchangeConfig) error {
	have := x.cfg
	diff := func(arg string, got, cur any) error {
		return errorf(KindPreconditionFailed, "inequivalent arg '%s' for exchange '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, cfg.Name, v.name, got, cur)
	}
	switch {
	case have.Type != cfg.Type:
		return diff("type", cfg.Type, have.Type)
	case have.Durable != cfg.Durable:
		return diff("durable", cfg.Durable, have.Durable)
	case have.AutoDelete != cfg.AutoDelete:
		return diff("auto_delete", cfg.AutoDelete, have.AutoDelete)
	case have.Internal != cfg.Internal:
		return diff("internal", cfg.Internal, have.Internal)
	}
	return equivalentArgs("exchange", cfg.Name, v.name, have.Args, cfg.Args, []string{"alternate-exchange", "x-delayed-type"})
}

// deleteExchange validates a delete and applies it. Deleting a missing
// exchange succeeds, as in RabbitMQ.
func (v *VHost) deleteExchange(name string, ifUnused bool, fx *effects) error {
	if name == "" {
		return errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	if reservedName(name) {
		return errorf(KindAccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	x := v.exchange(name)
	if x == nil {
		return nil
	}
	if ifUnused && (len(x.bindings) > 0 || len(x.inbound) > 0) {
		return errorf(KindPreconditionFailed, "exchange '%s' in vhost '%s' in use", name, v.name)
	}
	return v.commitLocked(DeleteExchange{VHost: v.name, Name: name}, fx)
}

// declareQueue validates a declare and applies it. An empty name gets a
// server-generated "amq.gen-…" name. conn identifies the declaring
// connection for exclusive queues. named says cfg.Name was checked (or
// generated) by an earlier round of a replicated declare (meta.go), which
// now checks the queue it proposed.
func (v *VHost) declareQueue(cfg QueueConfig, passive, named bool, conn uint64, fx *effects) (*Queue, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if passive {
		q := v.queue(cfg.Name)
		if q == nil {
			return nil, v.notFoundQueue(cfg.Name)
		}
		if err := v.checkOwner(q, conn); err != nil {
			return nil, err
		}
		return q, nil
	}
	if cfg.Name == "" {
		cfg.Name = "amq.gen-" + randomName()
	} else if reservedName(cfg.Name) && !cfg.Internal && !named {
		return nil, errorf(KindAccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", cfg.Name)
	}
	if q := v.queue(cfg.Name); q != nil {
		if err := v.checkOwner(q, conn); err != nil {
			return nil, err
		}
		if err := v.equivalentQueue(q, cfg); err != nil {
			return nil, err
		}
		q.Touch()
		fx.seq = v.lastSeq
		return q, nil
	}
	if cfg.Exclusive {
		cfg.Owner = conn
	}
	if err := checkStreamArgs(v.name, cfg); err != nil {
		return nil, err
	}
	if err := v.checkQueueLimitLocked(cfg, &effects{}); err != nil {
		return nil, err
	}
	// Every queue is bound to the default exchange by its name; that
	// binding is implicit (see routeInto).
	if err := v.commitLocked(DeclareQueue{QueueDef{VHost: v.name, QueueConfig: cfg}}, fx); err != nil {
		return nil, err
	}
	return v.queue(cfg.Name), nil
}

func (v *VHost) equivalentQueue(q *Queue, cfg QueueConfig) error {
	have := q.cfg
	diff := func(arg string, got, cur bool) error {
		return errorf(KindPreconditionFailed, "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
			arg, cfg.Name, v.name, got, cur)
	}
	switch {
	case have.Durable != cfg.Durable:
		return diff("durable", cfg.Durable, have.Durable)
	case have.AutoDelete != cfg.AutoDelete:
		return diff("auto_delete", cfg.AutoDelete, have.AutoDelete)
	case have.Exclusive != cfg.Exclusive:
		return errorf(KindResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", cfg.Name, v.name)
	}
	return equivalentArgs("queue", cfg.Name, v.name, have.Args, cfg.Args, argKeysOf(q.kind))
}

// checkOwner refuses access to another connection's exclusive queue.
//
// In a cluster, conn numbers connections of this node: another node's
// exclusive queue (Remote) is locked to every connection here, and so is
// an orphan, whose owner was a connection of this node's previous run.
func (v *VHost) checkOwner(q *Queue, conn uint64) error {
	if q.cfg.Exclusive && (q.cfg.Owner != conn || q.Remote() || q.orphan) {
		return errorf(KindResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", q.cfg.Name, v.name)
	}
	return nil
}

// Queue returns the named queue for use by connection conn: ErrNotFound if
// missing, ErrResourceLocked if another connection's exclusive queue.
func (v *VHost) Queue(name string, conn uint64) (*Queue, error) {
	q := v.queue(name)
	if q == nil {
		return nil, v.notFoundQueue(name)
	}
	if err := v.checkOwner(q, conn); err != nil {
		return nil, err
	}
	return q, nil
}

// deleteQueue validates a delete and applies it: the queue, its messages
// and its bindings go; fx gathers its consumers' cancellation and its log's
// removal. Deleting a missing queue succeeds, as in RabbitMQ. conn 0 is
// the broker itself.
//
// only, when set, is the queue the broker itself means to delete (x-expires,
// auto-delete, an owner's exclusive queues): a queue of the same name
// declared since is another queue and stays.
func (v *VHost) deleteQueue(name string, ifUnused, ifEmpty bool, conn uint64, only *Queue, fx *effects) error {
	var rc *remoteCounts
	for try := 0; ; try++ {
		if v.broker.clustered() && (ifUnused || ifEmpty) {
			rc = remoteCountsOf(v.queue(name))
		}
		v.mu.Lock()
		q := v.queue(name)
		if q == nil || !q.Remote() || !(ifUnused || ifEmpty) || (rc != nil && rc.q == q) {
			break
		}
		// Replaced by another remote queue of the same name meanwhile:
		// ask its node, without the lock.
		v.mu.Unlock()
		if try == 2 {
			return errorf(KindResourceError, "queue '%s' in vhost '%s' changed concurrently; try again", name, v.name)
		}
	}
	defer v.mu.Unlock()
	q := v.queue(name)
	if q == nil || (only != nil && q != only) {
		return nil
	}
	if conn != 0 {
		if err := v.checkOwner(q, conn); err != nil {
			return err
		}
	}
	if v.broker.clustered() && !q.cfg.Internal {
		// The queue closes when the delete is applied (meta.go).
		if err := checkDeleteLocked(q, ifUnused, ifEmpty, rc); err != nil {
			return err
		}
		return v.commitLocked(DeleteQueue{VHost: v.name, Name: name}, fx)
	}
	// The backend checks if-unused and if-empty and closes the queue under
	// its own lock, at once, so no consume or publish slips in between;
	// applying the command then finds it closed.
	n, consumers, err := q.backend.close(ifUnused, ifEmpty)
	if err != nil {
		return err
	}
	fx.messages += n
	if len(consumers) > 0 {
		fx.cancel = append(fx.cancel, func() {
			for _, c := range consumers {
				c.Cancelled(q)
			}
		})
	}
	return v.commitLocked(DeleteQueue{VHost: v.name, Name: name}, fx)
}

// DeleteExclusive deletes the exclusive queues owned by conn, which is
// closing. In a cluster each deletion is a metadata proposal that may wait
// (up to the proposal's deadline): they are made concurrently, so a
// connection with many exclusive queues waits about one deadline, not one
// per queue.
func (v *VHost) DeleteExclusive(conn uint64) {
	v.mu.Lock()
	queues := make([]*Queue, 0, len(v.owned[conn]))
	for n := range v.owned[conn] {
		if q := v.queue(n); q != nil {
			queues = append(queues, q)
		}
	}
	v.mu.Unlock()
	if len(queues) == 1 || v.broker.cfg.Replication.Metadata == nil {
		for _, q := range queues {
			v.deleteOwn(q, false)
		}
		return
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		wg.Go(func() { v.deleteOwn(q, false) })
	}
	wg.Wait()
}

// PurgeQueue empties a queue's ready messages.
func (v *VHost) PurgeQueue(name string, conn uint64) (int, error) {
	q, err := v.Queue(name, conn)
	if err != nil {
		return 0, err
	}
	return q.purgeErr()
}

func randomName() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
