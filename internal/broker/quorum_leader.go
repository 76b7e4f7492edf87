package broker

import (
	"slices"
	"time"
)

// What the leader of a quorum queue's group does beyond applying entries:
// it proposes TTL expiry when the head is due and reports consumer nodes
// that stopped answering. An idle queue keeps no timer.

// LeaderChanged implements ReplicatedMachine. A new leader reports the
// consumer nodes that do not answer (their unacked messages come back
// redelivered) and takes over the TTL and liveness timers.
func (b *quorumBackend) LeaderChanged(leader uint64, isLocal bool) {
	if leader != 0 {
		// Proposals that failed for want of a leader go out at once, not
		// at their retry timer: a consumer's cancel waiting there leaves
		// the machine assigning new messages to a consumer that is gone,
		// and the later the cancel commits, the likelier another consumer
		// has taken later messages meanwhile (the returned ones then come
		// after them, flagged redelivered).
		b.soon(b.retryIfWaiting)
	}
	b.mu.Lock()
	b.leader = isLocal
	if !isLocal || b.rlog == nil || b.deleted {
		b.stopTimersLocked()
		b.mu.Unlock()
		return
	}
	b.downSent = map[uint64]bool{}
	// x-expires counts from the last use this node saw applied, by its
	// own clock: a new leader starts the countdown afresh.
	b.usesSeen, b.usedAt = b.m.uses, b.now()
	b.armExpiryLocked()
	b.armUnusedLocked()
	b.mu.Unlock()
	b.soon(b.checkLiveness)
	b.soon(func() { b.syncConfig(quorumRetryN) }) // a policy change its predecessor did not propose
}

func (b *quorumBackend) stopTimersLocked() {
	if b.expiry != nil {
		b.expiry.Stop()
		b.expiryAt = 0
	}
	if b.liveTimer != nil {
		b.liveTimer.Stop()
		b.liveTimer = nil
	}
	if b.unused != nil {
		b.unused.Stop()
		b.unusedAt = 0
	}
}

// armUnusedLocked runs the leader's x-expires countdown while the queue
// has no consumer: from when this node, leading, applied the last use the
// entries recorded (a consumer leaving, a get, a declaration or
// redeclare), by its own clock — not the proposers', which may be skewed —
// or, when it saw none, from when it became the leader.
func (b *quorumBackend) armUnusedLocked() {
	exp := b.cur().expires // a policy's expires too
	if b.leader && b.m.uses != b.usesSeen {
		b.usesSeen, b.usedAt = b.m.uses, b.now()
	}
	if exp <= 0 || !b.leader || b.deleted || b.m.liveConsumers() > 0 {
		if b.unused != nil && b.unusedAt != 0 {
			b.unused.Stop()
			b.unusedAt = 0
		}
		return
	}
	at := b.usedAt + int64(exp)
	if b.unusedAt == at {
		return
	}
	b.unusedAt = at
	d := max(time.Duration(at-b.now()), 0)
	if b.unused == nil {
		b.unused = b.vhost.broker.cfg.Clock.AfterFunc(d, b.onUnused)
	} else {
		b.unused.Reset(d)
	}
}

// onUnused deletes the queue if it is still unused and this node still
// leads: in a cluster that proposes the deletion to every node.
func (b *quorumBackend) onUnused() {
	b.mu.Lock()
	b.unusedAt = 0
	due := b.leader && !b.deleted && b.m.liveConsumers() == 0 && b.m.uses == b.usesSeen &&
		b.now() >= b.usedAt+int64(b.cur().expires)
	if !due {
		b.armUnusedLocked()
	}
	b.mu.Unlock()
	if due {
		b.vhost.broker.log.Info("quorum queue unused for its x-expires: deleting it", "queue", b.cfg.Name)
		b.vhost.deleteOwn(b.Queue, true)
	}
}

// checkLiveness proposes node-down for each consumer node that does not
// answer (once, until it answers again), and runs again in quorumLiveCheck
// while this node leads.
func (b *quorumBackend) checkLiveness() {
	b.mu.Lock()
	if !b.leader || b.deleted || b.rlog == nil {
		b.mu.Unlock()
		return
	}
	rl := b.rlog
	var down []uint64
	for n := range b.downSent {
		if rl.Live(n) {
			delete(b.downSent, n)
		}
	}
	for _, n := range b.m.consumerNodes() {
		if n != b.node && !b.downSent[n] && !rl.Live(n) {
			b.downSent[n] = true
			down = append(down, n)
		}
	}
	if b.liveTimer != nil {
		b.liveTimer.Stop()
		b.liveTimer = nil
	}
	// An idle queue, or one whose consumers are all on this node, keeps
	// no timer: Apply arms it again when a consumer elsewhere attaches.
	if b.remoteConsumersLocked() {
		b.liveTimer = b.vhost.broker.cfg.Clock.AfterFunc(quorumLiveCheck, b.checkLiveness)
	}
	b.mu.Unlock()
	for _, n := range down {
		b.vhost.broker.log.Info("quorum queue: returning the messages of consumers on a node that does not answer",
			"queue", b.cfg.Name, "node", n)
		b.propose(&qcmd{kind: qcNodeDown, target: n}, func(_ any, err error) {
			if err != nil { // not reported: the next check tries again
				b.mu.Lock()
				delete(b.downSent, n)
				b.mu.Unlock()
			}
		})
	}
}

// remoteConsumersLocked reports whether consumers on other nodes hold or
// may take messages.
func (b *quorumBackend) remoteConsumersLocked() bool {
	return slices.ContainsFunc(b.m.consumerNodes(), func(n uint64) bool { return n != b.node })
}

// armExpiryLocked has the leader's timer propose a tick when the head
// message expires.
func (b *quorumBackend) armExpiryLocked() {
	next := b.m.nextExpiry()
	if !b.leader || b.deleted || next == 0 || (b.expiryAt != 0 && b.expiryAt <= next) {
		return
	}
	b.expiryAt = next
	d := time.Duration(next - b.now() + 1)
	if b.expiry == nil {
		b.expiry = b.vhost.broker.cfg.Clock.AfterFunc(max(d, 0), b.onExpiry)
	} else {
		b.expiry.Reset(max(d, 0))
	}
}

func (b *quorumBackend) onExpiry() {
	b.mu.Lock()
	b.expiryAt = 0
	b.mu.Unlock()
	b.propose(&qcmd{kind: qcTick}, func(_ any, err error) {
		if err != nil {
			b.mu.Lock()
			b.armExpiryLocked()
			b.mu.Unlock()
		}
	})
}
