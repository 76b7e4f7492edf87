package broker

import (
	"errors"

	"github.com/tern-broker/tern/internal/auth"
)

// IsQueueLimit says whether err is a declare refused by the vhost's
// max-queues (a KindPreconditionFailed error with RabbitMQ's 406 text),
// for adapters that answer it with a code of its own (MQTT's 0x97 Quota
// exceeded).
func IsQueueLimit(err error) bool {
	var be *Error
	return errors.As(err, &be) && be.queueLimit
}

// A vhost's max-queues (RabbitMQ's vhost limit) is checked twice: when a
// client's declare is validated, so a single node refuses it before
// logging anything, and when the DeclareQueue command is applied. In a
// cluster the second check is the one that counts: two declares made at
// once through two nodes both pass validation at the limit, but the
// metadata group applies them one after the other on every node, and
// every node refuses the later one alike (the count and the limit are
// both replicated state). The refused client's declare, validated again
// against the applied state (VHost.run), gets the limit's error.
//
// What is counted is every queue of the vhost but the direct reply-to
// pseudo queues (Internal), which live on one node only; exclusive,
// transient, MQTT session and server-named queues count, as in RabbitMQ.
// A declare of a queue that exists adds nothing and is never refused, and
// lowering the limit below the count deletes nothing.
//
// A single node's recovery (its definitions log and snapshot) is not
// checked: it holds what was accepted (the limit may have been lowered
// since). A cluster node applies its Raft log's entries in their original
// order on the state they were first applied to, so it refuses what it
// refused then; a snapshot it restores (RestoreDefinitions) clears the
// node's limits first and applies the snapshot's after its queues.

// checkQueueLimitLocked refuses a new queue in a vhost at its max-queues.
// v.mu is held.
func (v *VHost) checkQueueLimitLocked(cfg QueueConfig, fx *effects) error {
	if cfg.Internal || (fx.replay && !fx.replicated) {
		return nil
	}
	max := v.broker.users.VHostLimit(v.name, auth.LimitMaxQueues)
	if max < 0 || int64(v.counted) < max {
		return nil
	}
	e := errorf(KindPreconditionFailed, "cannot declare queue '%s' in vhost '%s': vhost queue limit (%d) is reached", cfg.Name, v.name, max).(*Error)
	e.queueLimit = true
	return e
}

// CheckQueueLimit returns the max-queues error that declaring n queues
// the vhost does not hold yet would meet now, or nil: a definitions
// import checks it before applying anything, so a file that would stop
// at the limit part way changes nothing.
func (v *VHost) CheckQueueLimit(n int) error {
	max := v.broker.users.VHostLimit(v.name, auth.LimitMaxQueues)
	if max < 0 || n == 0 {
		return nil
	}
	v.mu.Lock()
	counted := v.counted
	v.mu.Unlock()
	if int64(counted+n) <= max {
		return nil
	}
	e := errorf(KindPreconditionFailed, "cannot declare %d more queues in vhost '%s': vhost queue limit (%d) would be exceeded (%d queues now)", n, v.name, max, counted).(*Error)
	e.queueLimit = true
	return e
}
