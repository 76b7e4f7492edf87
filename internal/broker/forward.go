package broker

import (
	"errors"

	"github.com/tern-broker/tern/internal/message"
)

// ErrNodeUnreachable is wrapped by a Forwarder's publish outcome (done's
// error) when the queue's node could not be reached: down, cut off, or
// not connected. The message did not reach that queue. AMQP nacks it like
// any failed outcome; MQTT acknowledges the publish for its other
// destinations (internal/mqtt cluster.go).
var ErrNodeUnreachable = errors.New("the queue's node is down or unreachable")

// Forwarder carries operations on a remote queue (Queue.Remote: a classic
// queue or a stream another node of the cluster holds) to the node that
// holds it, so a client on any node can publish to and consume from any
// queue (issue 12, item 5). The cluster implements it
// (internal/cluster/forward) and hands it to Replication.Forward; without
// one a remote queue refuses publishes and consumers (remote.go).
//
// Every method is called by the remote queue's backend, never for a queue
// this node holds, and none is called with a lock of the broker held
// except Closed (the vhost's lock) and Publish (none, but on the
// publisher's goroutine: it must not wait on the network).
type Forwarder interface {
	// Publish hands m to q's node. It must not block on the network:
	// pending is true when done will learn the owner's outcome (nil error
	// once the owner has the message enqueued and, if it logs it,
	// durable; an error, which is a nack, when the owner refused it or
	// could not be reached). Rejected means the message was refused at
	// once (the publisher gets a nack), never a confirm.
	Publish(q *Queue, m *message.Message, done message.Completion, token uint64) (out PublishOutcome, pending bool)
	// Consume registers c for q's messages held by q's node: deliveries
	// arrive on this node and are offered to c (TryDeliver, respecting
	// its verdict: a refused delivery waits until Dispatch). It returns
	// the owner's refusal (an exclusive consumer, …) as a *Error.
	Consume(q *Queue, c Consumer, opts ConsumeOptions) error
	// Cancel removes c; what it took and has not settled stays unacked
	// on the owner until settled, as for a local consumer.
	Cancel(q *Queue, c Consumer)
	// Dispatch offers waiting deliveries of q again to its consumers on
	// this node (one whose credit came back called Queue.Dispatch).
	Dispatch(q *Queue)
	// Settle acks, requeues or rejects deliveries of q that this
	// Forwarder made (NewRemoteDelivery), by their owner-side ids.
	Settle(q *Queue, op SettleOp, ds []Delivery)
	// Get is basic.get on the owner, with a bounded wait; ok is false
	// when the queue is empty. err (a *Error, KindNotFound as RabbitMQ's
	// "home node … is down or inaccessible") says the owner could not be
	// asked or did not answer in time: the client gets a channel error,
	// not get-empty.
	Get(q *Queue, noAck bool) (d Delivery, ok bool, err error)
	// Purge empties q on its node and returns how many messages went, or
	// the error (as Get's) when the owner could not be asked or did not
	// answer in time — it may have purged.
	Purge(q *Queue) (int, error)
	// Counts returns q's counts as last learnt from its node: they may be
	// stale (or zero before the first answer).
	Counts(q *Queue) (ready, unacked, consumers int)
	// Closed tells the Forwarder that q was deleted: it forgets q and
	// returns q's consumers on this node, which the broker tells
	// (Consumer.Cancelled). Called with the vhost's lock held: it must
	// not block.
	Closed(q *Queue) []Consumer
}

// SettleOp is what a consumer did with a delivery.
type SettleOp uint8

// Settle operations.
const (
	SettleAck SettleOp = iota + 1
	SettleRequeue
	SettleReject
)

// NewRemoteDelivery is a delivery of q made by a Forwarder: id is the
// delivery's id on the owner (Delivery.Seq, by which it is settled) and
// consumer the Forwarder's name for the consumer it was delivered to (0
// for basic.get), which RemoteConsumer returns.
func NewRemoteDelivery(q *Queue, m *message.Message, id, consumer uint64, redelivered bool, remaining int) Delivery {
	return Delivery{Queue: q, Msg: m, Seq: id, Redelivered: redelivered, Remaining: remaining, qkey: consumer}
}

// RemoteConsumer returns, for a delivery made by NewRemoteDelivery, the
// consumer it was made for.
func (d Delivery) RemoteConsumer() uint64 { return d.qkey }

// ID returns the queue's identity in the cluster's metadata (QueueDef.ID,
// also the name of a durable queue's log): a queue declared again under
// the same name has another.
func (q *Queue) ID() string { return q.id }

// Enqueue publishes m to q alone, as routing would have (the Forwarder's
// owner side: the publisher's node routed it). done and token are as for
// VHost.Publish.
func (q *Queue) Enqueue(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	return q.publish(m, done, token)
}

// QueueByID returns the named queue if its ID is id (any ID when id is
// ""), or nil. It checks no exclusive owner: a Forwarder's owner side
// serves other nodes, whose own checks ran where the client is.
func (v *VHost) QueueByID(name, id string) *Queue {
	q := v.queue(name)
	if q == nil || (id != "" && q.id != id) {
		return nil
	}
	return q
}
