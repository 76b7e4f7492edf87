package broker

import (
	"errors"
	"slices"
	"sync"
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
// consumers of its earlier runs are gone, their messages come back. One
// at a time: asked again while one is on its way, it does nothing.
func (b *quorumBackend) announceRun() {
	b.mu.Lock()
	busy := b.announcing
	b.announcing = true
	b.mu.Unlock()
	if !busy {
		b.proposeAnnounce()
	}
}

// proposeAnnounce proposes the node-restarted whose announcing flag its
// caller set; the flag drops once it applied.
func (b *quorumBackend) proposeAnnounce() {
	b.proposeRetry(&qcmd{kind: qcNodeRestarted, target: b.node, epoch: b.epoch}, quorumRetryN, func() {
		b.mu.Lock()
		b.announcing = false
		b.mu.Unlock()
	})
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

// proposeWait proposes c and waits, at most quorumWait by the broker's
// clock, for its result. A result arriving after the wait gave up goes to
// late (when not nil), on the outbox: the entry applied although its
// proposer was told it had not (a basic.get's checkout, to give back).
func (b *quorumBackend) proposeWait(c *qcmd, late func(res any)) (any, error) {
	type answer struct {
		res any
		err error
	}
	var mu sync.Mutex
	gaveUp := false
	ch := make(chan answer, 2) // the answer and the timeout: neither send ever blocks
	b.propose(c, func(res any, err error) {
		mu.Lock()
		g := gaveUp
		mu.Unlock()
		if !g {
			select {
			case ch <- answer{res, err}:
			default: // done called twice: the first answer stands
			}
			return
		}
		if err == nil && late != nil {
			b.soon(func() { late(res) })
		}
	})
	t := b.vhost.broker.cfg.Clock.AfterFunc(quorumWait, func() {
		select {
		case ch <- answer{err: errQuorumTimeout}:
		default:
		}
	})
	a := <-ch
	t.Stop()
	if errors.Is(a.err, errQuorumTimeout) && a.res == nil {
		mu.Lock()
		gaveUp = true
		mu.Unlock()
		// An answer that came between the timeout and gaveUp is the
		// real one: take it rather than drop it.
		select {
		case a2 := <-ch:
			a = a2
		default:
		}
	}
	if e, ok := a.res.(error); ok && a.err == nil {
		return nil, e
	}
	return a.res, a.err
}

// notAppliedError is a publish to a quorum queue whose entry was not
// applied in time (no leader, the group closed): not a storage failure,
// and the message may still be in the queue (the entry may commit later).
// A publisher gets a nack; a delayed message keeps its record.
type notAppliedError struct{ err error }

func (e *notAppliedError) Error() string {
	return "broker: the quorum queue did not take the message: " + e.err.Error()
}

func (e *notAppliedError) Unwrap() error { return e.err }

// retryItem is a proposal that must happen, waiting for its next attempt.
type retryItem struct {
	c    *qcmd
	left int    // attempts left
	done func() // runs once, when c applied or was given up (nil: nothing)
}

// proposeRetry proposes c until it is applied, while the queue exists:
// up to n times, a quorumRetry apart, then it waits (parked) for a sign
// that the group works again — a leader known, an entry applied here —
// and starts over with quorumRetryN attempts. done (may be nil) runs once
// it applied, or the queue is gone. Giving up would strand messages for
// good: a cancel never applied leaves a consumer the machine keeps
// assigning to and this node never delivers for nor cancels again (a
// ghost), a lost node-up leaves this node's consumers down, a lost
// settlement leaves its message checked out. The commands retried are
// harmless twice:
// settlements name the delivery they settle (a stale or repeated one
// changes nothing), a cancel of a cancelled consumer is nothing, node-up
// and node-restarted are idempotent. Without retries a settlement lost to
// a leaderless moment would leave its message checked out to a consumer
// whose node is live, for good. The failures of one moment wait in one
// batch, with one timer, and go out again together (retryNow).
func (b *quorumBackend) proposeRetry(c *qcmd, n int, done func()) {
	b.propose(c, func(_ any, err error) {
		if err == nil || b.isDeleted() {
			if done != nil {
				done()
			}
			return
		}
		b.retryMu.Lock()
		if n <= 1 {
			b.vhost.broker.log.Debug("quorum queue: a proposal waits for the group to work again", "queue", b.cfg.Name, "kind", c.kind, "err", err)
			b.parked = append(b.parked, retryItem{c: c, left: quorumRetryN, done: done})
			b.anyParked.Store(true)
			b.retryMu.Unlock()
			return
		}
		b.retries = append(b.retries, retryItem{c: c, left: n - 1, done: done})
		if !b.retryArmed {
			b.retryArmed = true
			b.vhost.broker.cfg.Clock.AfterFunc(quorumRetry, b.retryNow)
		}
		b.retryMu.Unlock()
	})
}

func (b *quorumBackend) isDeleted() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deleted
}

// retryNow proposes the waiting batch again, in order, merging
// neighbouring settlements of one kind into one entry.
func (b *quorumBackend) retryNow() {
	b.retryMu.Lock()
	items := b.retries
	b.retries, b.retryArmed = nil, false
	b.retryMu.Unlock()
	if b.isDeleted() {
		return // what they would settle went with the queue
	}
	for _, it := range coalesceRetries(items) {
		b.proposeRetry(it.c, it.left, it.done)
	}
}

// retryIfWaiting proposes the waiting batch now, if there is one, with
// the parked proposals (a leader became known, or an entry applied).
func (b *quorumBackend) retryIfWaiting() {
	b.retryMu.Lock()
	b.retries = append(b.retries, b.parked...)
	b.parked = nil
	b.anyParked.Store(false)
	waiting := len(b.retries) > 0
	b.retryMu.Unlock()
	if waiting {
		b.retryNow()
	}
}

// coalesceRetries merges runs of settlements of the same kind (and
// flags) into one command, keeping the order of everything else.
func coalesceRetries(items []retryItem) []retryItem {
	var out []retryItem
	for _, it := range items {
		if n := len(out); n > 0 && mergeable(out[n-1].c, it.c) {
			last := &out[n-1]
			merged := *last.c
			merged.refs = append(slices.Clip(last.c.refs), it.c.refs...)
			d1, d2 := last.done, it.done
			last.c, last.left = &merged, max(last.left, it.left)
			last.done = func() {
				if d1 != nil {
					d1()
				}
				if d2 != nil {
					d2()
				}
			}
			continue
		}
		out = append(out, it)
	}
	return out
}

func mergeable(a, b *qcmd) bool {
	switch a.kind {
	case qcSettleAt, qcReturnAt, qcDiscardAt:
		return a.kind == b.kind && a.flags == b.flags
	}
	return false
}

// inflightLocked counts refs as settlements in flight for their
// consumers; b.mu is held.
func (b *quorumBackend) inflightLocked(refs []qref) {
	// By runs of one key (a consumer's acks come together): one map
	// operation per run rather than per message.
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && refs[j].key == refs[i].key {
			j++
		}
		b.inflight[refs[i].key] += j - i
		i = j
	}
}

// proposeSettlement proposes a settlement of refs (counted in flight by
// inflightLocked), retried until it applies or is given up.
func (b *quorumBackend) proposeSettlement(kind qcmdKind, flags uint8, refs []qref) {
	if len(refs) == 0 {
		return
	}
	b.proposeRetry(&qcmd{kind: kind, flags: flags, refs: refs}, quorumRetryN, func() { b.settlementDone(refs) })
}

// settlementDone ends refs' time in flight, and proposes (on the outbox:
// this may run on the group's goroutine) the cancel of a consumer that was
// waiting for its last one.
func (b *quorumBackend) settlementDone(refs []qref) {
	var cancels []*qcmd
	b.mu.Lock()
	if b.deleted {
		b.mu.Unlock()
		return
	}
	for i := 0; i < len(refs); {
		key := refs[i].key
		j := i + 1
		for j < len(refs) && refs[j].key == key {
			j++
		}
		n := b.inflight[key] - (j - i)
		i = j
		if n > 0 {
			b.inflight[key] = n
			continue
		}
		delete(b.inflight, key)
		if lc := b.closing[key]; lc != nil {
			delete(b.closing, key)
			cancels = append(cancels, cancelOf(lc))
		}
	}
	b.mu.Unlock()
	for _, c := range cancels {
		b.soon(func() { b.proposeRetry(c, quorumRetryN, nil) })
	}
}
