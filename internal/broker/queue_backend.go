package broker

import "github.com/tern-broker/tern/internal/message"

// QueueType is the kind of a queue, fixed when it is declared
// (x-queue-type). It picks the queue's backend.
type QueueType uint8

// Queue types.
const (
	// Classic queues keep ready messages in memory, persistent ones of a
	// durable queue also in its log (classic.go).
	Classic QueueType = iota
	// Stream queues are their log: messages stay after consumption and
	// every consumer reads from its own offset (stream.go).
	Stream
	// Quorum queues are replicated: a Raft group per queue whose state
	// machine holds the messages (quorum_*.go). Declaring one needs
	// Config.Replication.Quorum: a cluster's groups, or a single node's
	// one-voter groups (internal/cluster/solo); without, it is refused.
	Quorum
)

// String returns the type's x-queue-type name.
func (t QueueType) String() string {
	switch t {
	case Stream:
		return "stream"
	case Quorum:
		return "quorum"
	}
	return "classic"
}

// parseQueueType reads x-queue-type. A node without a cluster refuses
// quorum when the queue is attached (attachQuorumLocked).
func parseQueueType(s string) (QueueType, bool) {
	switch s {
	case "classic":
		return Classic, true
	case "stream":
		return Stream, true
	case "quorum":
		return Quorum, true
	}
	return Classic, false
}

// queueBackend is how one kind of queue stores, orders and delivers its
// messages. A Queue calls its backend once per operation (a publish, an
// ack of a batch, a consume), never per message inside a loop, so the
// interface costs one indirect call on the hot path. Each backend owns its
// state under its own lock and documents it; none is called with a lock of
// the caller held except as noted on Queue's methods.
type queueBackend interface {
	// publish stores or hands on m; done learns when a logged message is
	// durable and pending reports that it will be called.
	publish(m *message.Message, done message.Completion, token uint64) (out PublishOutcome, pending bool)
	// get takes one message for basic.get; ok is false when there is none
	// (or the kind has no basic.get).
	get(noAck bool) (d Delivery, ok bool)
	consume(c Consumer, opts ConsumeOptions) error
	cancel(c Consumer)
	// dispatch delivers to consumers whose credit came back.
	dispatch()
	ack(ds []Delivery)
	// requeue returns deliveries; failed ones (basic.reject) count a
	// failed delivery where the type counts them (quorum queues).
	requeue(ds []Delivery, failed bool)
	reject(ds []Delivery)
	purge() int
	counts() (ready, unacked, consumers int)
	readyBytes() int64
	// touch records use of the queue for x-expires.
	touch()
	// restore loads what the log recovered at start-up and returns how
	// many messages that was.
	restore() int
	// close marks the queue deleted, dropping its messages, unless
	// ifUnused or ifEmpty forbid it, and returns how many ready messages
	// it held and the consumers to tell. Called with the vhost's lock
	// held.
	close(ifUnused, ifEmpty bool) (n int, consumers []Consumer, err error)
}

// publish enqueues m (or hands it straight to a consumer). A persistent
// message in a durable queue is appended to the log; done learns when it is
// durable and pending reports that it will.
func (q *Queue) publish(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	out, pending := q.backend.publish(m, done, token)
	if q.kind != Classic && out == Enqueued {
		q.counters.published.Add(1)
	}
	return out, pending
}

// Counts returns the ready and unacked message counts and the consumer
// count. For a stream, ready is the number of messages it holds.
func (q *Queue) Counts() (ready, unacked, consumers int) { return q.backend.counts() }

// ReadyBytes returns the body bytes of the ready messages.
func (q *Queue) ReadyBytes() int64 { return q.backend.readyBytes() }

// Get takes one message for basic.get. ok is false when the queue is empty
// (always for a stream, which is read by consumers with an offset). With
// noAck the message is settled at once; otherwise the caller must Ack or
// Requeue it.
func (q *Queue) Get(noAck bool) (Delivery, bool) {
	d, ok := q.backend.get(noAck)
	if ok && q.kind != Classic {
		q.countDelivered(d.Redelivered)
	}
	return d, ok
}

// Purge removes every ready message and returns how many there were. A
// stream's history stays (retention trims it): it purges nothing.
func (q *Queue) Purge() int { return q.backend.purge() }

// Consume registers c. It fails with ErrAccessRefused when the queue has an
// exclusive consumer, or when an exclusive consumer is asked for and others
// exist.
func (q *Queue) Consume(c Consumer, opts ConsumeOptions) error { return q.backend.consume(c, opts) }

// Cancel removes c. An auto-delete queue is deleted once its last consumer
// is gone.
func (q *Queue) Cancel(c Consumer) { q.backend.cancel(c) }

// Dispatch delivers ready messages to consumers that can take them. A
// consumer calls it when its credit returns (acks, flow on, buffer drained).
func (q *Queue) Dispatch() { q.backend.dispatch() }

// Ack settles delivered messages for good, then delivers waiting messages
// to consumers whose prefetch the ack freed. A stream records named
// consumers' offsets instead.
func (q *Queue) Ack(ds ...Delivery) {
	if q.kind != Classic {
		q.counters.acked.Add(uint64(len(ds)))
	}
	q.backend.ack(ds)
}

// Requeue returns delivered messages to the ready list in their original
// order, marked redelivered, and dispatches them again. Nothing goes back
// into a stream: the consumer's credit does. It is not a failed delivery
// (basic.nack with requeue, a closed channel): a quorum queue does not
// count it against x-delivery-limit, as in RabbitMQ 4.3.
func (q *Queue) Requeue(ds []Delivery) {
	if len(ds) > 0 {
		q.backend.requeue(ds, false)
	}
}

// RequeueFailed is Requeue for deliveries whose processing failed
// (basic.reject with requeue): a quorum queue counts each as a failed
// delivery (x-delivery-count) and dead-letters a message past its
// x-delivery-limit, as RabbitMQ 4.3 does. Other queue types requeue.
func (q *Queue) RequeueFailed(ds []Delivery) {
	if len(ds) > 0 {
		q.backend.requeue(ds, true)
	}
}

// Reject settles delivered messages that a consumer refused without requeue:
// they are dead-lettered with reason "rejected" when the queue has a
// dead-letter exchange, and dropped otherwise.
func (q *Queue) Reject(ds []Delivery) { q.backend.reject(ds) }

// ConsumerCount returns the number of consumers.
func (q *Queue) ConsumerCount() int {
	_, _, n := q.backend.counts()
	return n
}

// Touch records use of the queue (a redeclare) for x-expires.
func (q *Queue) Touch() { q.backend.touch() }
