package broker

import (
	"crypto/rand"
	"encoding/hex"
)

// quorumArgs are the arguments only quorum queues read.
type quorumArgs struct {
	// deliveryLimit is x-delivery-limit: a message returned by consumers
	// more often than this is dead-lettered (reason delivery_limit) or
	// dropped. RabbitMQ 4's default is 20; a negative value (RabbitMQ: -1)
	// means no limit.
	deliveryLimit int64
	// groupSize is x-quorum-initial-group-size, 0 when unset (the cluster
	// chooses: 3, capped at the node count).
	groupSize int64
}

// DefaultDeliveryLimit is a quorum queue's x-delivery-limit when the
// declaration sets none, as in RabbitMQ 4.
const DefaultDeliveryLimit = 20

var defaultQuorumArgs = quorumArgs{deliveryLimit: DefaultDeliveryLimit}

// parse reads one of a quorum queue's quorumArgKeys; parseQueueArgs calls
// it for quorum queues only (other types ignore these keys, as in
// RabbitMQ).
func (a *quorumArgs) parse(key string, v any, bad func(key string, v any, why string) error) error {
	switch key {
	case "x-delivery-limit":
		n, ok := argInt(v)
		if !ok {
			return bad(key, v, "unacceptable_type")
		}
		a.deliveryLimit = max(n, -1)
	case "x-quorum-initial-group-size":
		n, ok := argInt(v)
		switch {
		case !ok:
			return bad(key, v, "unacceptable_type")
		case n < 0:
			return bad(key, v, "value_negative")
		case n == 0:
			return bad(key, v, "value_zero")
		}
		a.groupSize = n
	}
	return nil
}

// GroupSize is the queue's x-quorum-initial-group-size, 0 when it was not
// given: how many voters the cluster should place for a quorum queue.
func (q *Queue) GroupSize() int { return int(q.args.quorum.groupSize) }

// QuorumGroupSize reads x-quorum-initial-group-size from a quorum queue's
// declared arguments (QueueDef.Args, as QuorumGroups.Open receives them):
// 0 when absent. A declared queue's value was validated (a positive
// integer).
func QuorumGroupSize(args map[string]any) int {
	n, ok := argInt(args["x-quorum-initial-group-size"])
	if !ok || n <= 0 {
		return 0
	}
	return int(n)
}

// checkQuorumLocked refuses what RabbitMQ refuses on a quorum queue, with
// its texts and in its order: arguments first, then the properties
// (auto-delete, exclusive, non-durable). Arguments RabbitMQ 3.13 refuses
// are refused; so is x-deliver-rate, which Tern does not implement for
// quorum queues, rather than accepted and ignored.
func checkQuorumLocked(v *VHost, cfg QueueConfig, a *queueArgs) error {
	rs := func(format string) error { return errorf(KindPreconditionFailed, format, cfg.Name, v.name) }
	for _, key := range []string{"x-max-priority", "x-deliver-rate"} {
		if _, ok := cfg.Args[key]; ok {
			return errorf(KindPreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s'", key, cfg.Name, v.name)
		}
	}
	if a.overflow == RejectPublishDLX {
		return rs("invalid arg 'x-overflow' with value 'reject-publish-dlx' for queue '%s' in vhost '%s'")
	}
	switch {
	case cfg.AutoDelete:
		return rs("invalid property 'auto-delete' for queue '%s' in vhost '%s'")
	case cfg.Exclusive:
		return rs("invalid property 'exclusive-owner' for queue '%s' in vhost '%s'")
	case !cfg.Durable:
		return rs("invalid property 'non-durable' for queue '%s' in vhost '%s'")
	}
	return nil
}

// clientLocal reports whether a quorum queue declared with args should be
// led by the declaring node (LocalQuorumIDs): unless x-queue-leader-locator
// asks for "balanced" (or the older "random" or "least-leaders"), where the
// queue id alone spreads the leaders over the nodes. RabbitMQ's default is
// client-local too. The argument is read once, at declaration; it is not
// compared on redeclare.
func clientLocal(args map[string]any) bool {
	switch v, _ := args["x-queue-leader-locator"].(string); v {
	case "balanced", "random", "least-leaders":
		return false
	}
	return true
}

// NewQueueID returns a fresh id for a queue's log or Raft group. A
// replicated DeclareQueue of a quorum queue must carry one chosen by the
// node that proposes it (QueueDef.ID), so every node opens the same group.
func NewQueueID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// attachQuorumLocked gives a new quorum queue its backend and opens this
// node's replica of its Raft group. Without a cluster (no
// Replication.Quorum) the type is refused as any unsupported one. id names
// the group: every node must open the same one, so in a cluster the
// declaring node chooses it and the DeclareQueue command carries it; an
// empty id gets a fresh one (a single node). v.mu is held.
func (v *VHost) attachQuorumLocked(q *Queue, id string) error {
	groups := v.broker.cfg.Replication.Quorum
	if groups == nil {
		return errorf(KindPreconditionFailed, "invalid arg 'x-queue-type' for queue '%s' in vhost '%s': {unsupported_queue_type,quorum}", q.cfg.Name, v.name)
	}
	if err := checkQuorumLocked(v, q.cfg, q.args); err != nil {
		return err
	}
	if id == "" {
		if v.broker.cfg.Replication.Metadata != nil {
			// Each node would open a group of its own: refuse loudly.
			return errorf(KindResourceError, "quorum queue '%s' in vhost '%s' was declared without a group id", q.cfg.Name, v.name)
		}
		id = NewQueueID()
	}
	q.id = id
	b := newQuorumBackend(q)
	rl, err := groups.Open(QueueDef{VHost: v.name, ID: id, QueueConfig: q.cfg}, b)
	if err != nil {
		return causedf(KindResourceError, err, "could not open the replica of quorum queue '%s' in vhost '%s'", q.cfg.Name, v.name)
	}
	b.start(rl)
	q.backend = b
	return nil
}
