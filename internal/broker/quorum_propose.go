package broker

import (
	"slices"
	"time"
)

// How a quorum backend proposes: stamped with its node and clock, from
// any goroutine but the group's own (the outbox), with a bounded wait for
// the synchronous operations, and retried for those that must happen.

// staleRunLocked reports whether the machine holds consumers of an
// earlier run of this node.
func (b *quorumBackend) staleRunLocked() bool {
	return slices.ContainsFunc(b.m.consumers, func(q *qconsumer) bool {
		return q.node == b.node && uint32(q.key>>32) != b.epoch
	})
}

// announceRun proposes node-restarted for this run of the node: the
// consumers of its earlier runs are gone, their messages come back.
func (b *quorumBackend) announceRun() {
	b.proposeRetry(&qcmd{kind: qcNodeRestarted, target: b.node, epoch: b.epoch}, quorumRetryN)
}

// soon runs f after the caller returns, off the group's goroutine, in
// the order soon was called.
func (b *quorumBackend) soon(f func()) {
	b.outMu.Lock()
	b.outbox = append(b.outbox, f)
	if b.work != nil {
		b.work(1)
	}
	if b.outRunning {
		b.outMu.Unlock()
		return
	}
	b.outRunning = true
	b.outMu.Unlock()
	go b.drainOutbox()
}

func (b *quorumBackend) drainOutbox() {
	for {
		b.outMu.Lock()
		fs := b.outbox
		b.outbox = nil
		if len(fs) == 0 {
			b.outRunning = false
			b.outMu.Unlock()
			return
		}
		b.outMu.Unlock()
		for _, f := range fs {
			f()
			if b.work != nil {
				b.work(-1)
			}
		}
	}
}

func (b *quorumBackend) now() int64 { return b.vhost.broker.cfg.Clock.Now().UnixNano() }

// propose sends c to the group, stamped with this node and its clock.
func (b *quorumBackend) propose(c *qcmd, done func(any, error)) {
	b.mu.Lock()
	rl := b.rlog
	b.mu.Unlock()
	if done == nil {
		done = func(any, error) {}
	}
	if rl == nil {
		done(nil, errQuorumTimeout)
		return
	}
	c.node = b.node
	if c.kind != qcEnqueue {
		c.ts = b.now()
	}
	rl.Propose(c.encode(make([]byte, 0, c.sizeHint())), done)
}

// proposeWait proposes c and waits, at most quorumWait, for its result.
func (b *quorumBackend) proposeWait(c *qcmd) (any, error) {
	type answer struct {
		res any
		err error
	}
	ch := make(chan answer, 1)
	b.propose(c, func(res any, err error) { ch <- answer{res, err} })
	t := time.NewTimer(quorumWait)
	defer t.Stop()
	select {
	case a := <-ch:
		if e, ok := a.res.(error); ok && a.err == nil {
			return nil, e
		}
		return a.res, a.err
	case <-t.C:
		return nil, errQuorumTimeout
	}
}

// proposeRetry proposes c until it is applied, at most n times, a
// quorumRetry apart, while the queue exists. The commands retried are
// harmless twice: settlements name the consumer holding the message (a
// stale one changes nothing), a cancel of a cancelled consumer is
// nothing, node-up and node-restarted are idempotent. Without retries a
// settlement lost to a leaderless moment would leave its message checked
// out to a consumer whose node is live, for good.
func (b *quorumBackend) proposeRetry(c *qcmd, n int) {
	b.propose(c, func(_ any, err error) {
		if err == nil || n <= 1 {
			return
		}
		b.mu.Lock()
		gone := b.deleted
		b.mu.Unlock()
		if !gone {
			b.vhost.broker.cfg.Clock.AfterFunc(quorumRetry, func() { b.proposeRetry(c, n-1) })
		}
	})
}
