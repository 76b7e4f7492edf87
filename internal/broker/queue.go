package broker

import (
	"errors"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/message"
	"golang.org/x/time/rate"
)

// QueueConfig describes a queue to declare.
type QueueConfig struct {
	Name string
	// Owner is the connection that owns an exclusive queue.
	Owner      uint64
	Args       map[string]any
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	// Internal hides the queue from listings (direct reply-to queues).
	Internal bool
}

// Queue is a named queue of a virtual host: what every kind of queue
// shares (its name, arguments, vhost, log and bindings). How messages are
// stored, ordered and handed to consumers is its backend's, chosen once by
// the queue's type when it is created (queue_backend.go): classicBackend
// (classic.go), streamBackend (stream.go) or quorumBackend
// (quorum_backend.go). The fields here are set before
// the queue is published in its vhost and never change (readErrors is
// atomic); its bindings (binds) are guarded by the vhost's lock.
type Queue struct {
	cfg    QueueConfig
	args   *queueArgs // as declared; shared by queues declared alike (newQueue)
	kind   QueueType
	orphan bool // cluster: this node's, declared by a previous run of it (meta.go)
	// readErrors counts stored messages the log failed to return; 32
	// bits, beside kind and orphan, keep the Queue in a smaller size class.
	readErrors atomic.Uint32
	vhost      *VHost
	id         string // durable queues: the name of its log in storage
	log        Log    // nil: messages live in memory only
	backend    queueBackend
	node       uint64                       // cluster: the node holding its messages (QueueDef.Node); 0: this one
	pol        queuePolicyState             // the policies that apply and the effective arguments (policy_apply.go)
	pubLimit   atomic.Pointer[rate.Limiter] // a publish-rate policy's bucket (policy_rate.go)

	counters *msgCounters // quorum queues' and streams' message_stats (queue_stats.go); nil for classic ones

	// binds are the bindings whose destination is this queue, for
	// deleting them with it; guarded by the vhost's mu (binding.go).
	// Here rather than in a vhost map: a map entry cost an MQTT session
	// about 70 bytes.
	binds []*Binding
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.cfg.Name }

// Config returns how the queue was declared.
func (q *Queue) Config() QueueConfig { return q.cfg }

// VHost returns the queue's virtual host.
func (q *Queue) VHost() *VHost { return q.vhost }

// Type returns the queue's type.
func (q *Queue) Type() QueueType { return q.kind }

// IsStream reports whether the queue is a stream.
func (q *Queue) IsStream() bool { return q.kind == Stream }

// newQueue returns a queue of the type its arguments name. A stream's
// backend needs its log and a quorum queue's its Raft group: they are
// attached with them (attachLogLocked).
//
// Queues declared without arguments that change them (most: every MQTT
// session's) share one parsed set, 150 bytes less per queue.
func newQueue(v *VHost, cfg QueueConfig, args queueArgs) *Queue {
	pa := &plainClassicArgs
	if args != plainClassicArgs {
		pa = &args
	}
	q := &Queue{cfg: cfg, args: pa, kind: args.queueType, vhost: v}
	if q.kind == Classic {
		q.backend = newClassicBackend(q)
	} else {
		q.counters = &msgCounters{}
	}
	return q
}

// plainClassicArgs are a classic queue's arguments when none are given;
// never changed.
var plainClassicArgs, _ = parseQueueArgs("", "", nil)

// PublishOutcome is what a queue did with a published message.
type PublishOutcome int

// Publish outcomes.
const (
	Enqueued PublishOutcome = iota
	// Rejected means x-overflow=reject-publish(-dlx) refused the message,
	// or storage failed to take it: the publisher gets a nack.
	Rejected
	// Dropped means the queue is gone; the message went nowhere.
	Dropped
)

// settle forgets a message for good (acked, expired, dropped, or delivered
// without ack): its memory is released and the log told. It touches no
// field of the queue, so it needs no lock.
func (q *Queue) settle(seq uint64, size int64, inMemory, persisted bool) {
	if inMemory {
		q.vhost.broker.bodyOut(size)
	} else {
		q.vhost.broker.pagedOut()
	}
	if persisted && q.log != nil {
		q.log.Ack(seq)
	}
}

// readFailed handles a stored message the log could not return: it is
// dropped. A message whose write failed was refused to its publisher
// already and the store logged the failure once, so it goes quietly; any
// other failure is a lost message, logged and counted.
func (q *Queue) readFailed(seq uint64, err error) {
	if errors.Is(err, message.ErrNotStored) {
		q.vhost.broker.log.Debug("dropping a message whose write failed", "queue", q.cfg.Name, "seq", seq)
		return
	}
	q.readErrors.Add(1)
	q.vhost.broker.log.Error("cannot read a stored message; dropping it", "queue", q.cfg.Name, "seq", seq, "err", err)
}
