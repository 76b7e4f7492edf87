package forward

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/message"
)

// link is the client side's state for one owner node: the publishes
// queued for it, the control operations (settles, credits, cancels) of
// this node's consumers on it, and those consumers. Publishes and control
// operations each go in one request at a time, so each keeps its order;
// whatever queued while a request was out goes in the next.
type link struct {
	f    *Forwarder
	node uint64

	pmu      sync.Mutex
	pbuf     []byte // the next publish request's body
	pitems   []pubWaiter
	pspareI  []pubWaiter
	pscratch []byte
	plast    *broker.Queue // the queue of the last item in pbuf
	psending bool

	mu        sync.Mutex
	consumers map[uint64]*remoteConsumer
	gets      int // basic.get deliveries not settled yet
	ctl       []ctlOp
	credit    map[uint64]uint64 // consumer → released, to send
	csending  bool
	kaBusy    bool
	lastOK    time.Time // the last keepalive the owner answered (or the link's start)
	downUntil time.Time // a request found the owner unreachable: don't wait on it for counts
	downSince time.Time // when the owner was last found unreachable after being reachable
	counts    map[*broker.Queue]*countEntry
	countsOut chan struct{} // a counts request is out; closed when it is answered
}

type pubWaiter struct {
	done  message.Completion
	token uint64
	q     *broker.Queue
}

func (f *Forwarder) link(node uint64) *link {
	if l, ok := f.links.Load(node); ok {
		return l.(*link)
	}
	l := &link{f: f, node: node, consumers: map[uint64]*remoteConsumer{}, credit: map[uint64]uint64{}, counts: map[*broker.Queue]*countEntry{},
		lastOK: f.cfg.Clock.Now()}
	actual, _ := f.links.LoadOrStore(node, l)
	return actual.(*link)
}

// errRejected is the error a publish's Completion gets when the owner
// refused the message: the publisher's nack.
var errRejected = errors.New("forward: the queue's node refused the message")

// Publish implements broker.Forwarder: the message joins the next publish
// request to q's node; done learns the owner's outcome.
func (f *Forwarder) Publish(q *broker.Queue, m *message.Message, done message.Completion, token uint64) (broker.PublishOutcome, bool) {
	l := f.link(q.Node())
	l.pmu.Lock()
	if len(l.pbuf) >= f.cfg.MaxPendingBytes {
		l.pmu.Unlock()
		return broker.Rejected, false
	}
	l.pscratch = message.AppendMessage(l.pscratch[:0], m)
	same := l.plast == q && len(l.pitems) > 0
	if !same {
		r := refOf(q)
		l.pbuf = appendPublishItem(l.pbuf, &r, false, l.pscratch)
	} else {
		l.pbuf = appendPublishItem(l.pbuf, nil, true, l.pscratch)
	}
	l.plast = q
	l.pitems = append(l.pitems, pubWaiter{done: done, token: token, q: q})
	start := !l.psending
	l.psending = true
	l.pmu.Unlock()
	if start {
		go l.sendPublishes()
	}
	return broker.Enqueued, done != nil
}

// sendPublishes sends queued publishes, one request at a time, until none
// are left, and reports each outcome to its publisher.
func (l *link) sendPublishes() {
	for {
		l.pmu.Lock()
		if len(l.pitems) == 0 {
			l.psending = false
			l.pmu.Unlock()
			return
		}
		body, items := l.pbuf, l.pitems
		l.pbuf, l.pitems = make([]byte, 0, len(body)), l.pspareI[:0]
		l.plast = nil
		l.pmu.Unlock()

		var reply []byte
		var err error
		if l.knownDown() {
			err = fmt.Errorf("forward: node %d not connected since a request failed: %w", l.node, transport.ErrUnreachable)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), l.f.cfg.PublishTimeout)
			reply, err = l.f.tr.Request(ctx, l.node, KindPublish, body)
			cancel()
		}
		l.f.stats.pubBatches.Add(1)
		l.f.stats.pubForwarded.Add(uint64(len(items)))
		var outcomes []byte
		if err == nil {
			outcomes, err = decodePublishReply(reply, len(items))
		}
		if errors.Is(err, transport.ErrUnreachable) {
			err = fmt.Errorf("%w: %w", broker.ErrNodeUnreachable, err)
		}
		if err != nil {
			l.failed(err)
			if errors.Is(err, broker.ErrNodeUnreachable) {
				l.awaitTransientGone(items)
			}
			l.f.log.Debug("forwarded publishes nacked", "node", l.node, "n", len(items), "err", err)
		}
		var batches []message.BatchCompletion
		for i, it := range items {
			if it.done == nil {
				continue
			}
			var e error
			switch {
			case err != nil:
				if !deleted(it.q) { // a deleted queue's publish is confirmed
					e = err
				}
			case outcomes[i] == outcomeRejected:
				e = errRejected
			}
			if e != nil {
				l.f.stats.pubNacked.Add(1)
			}
			it.done.Durable(it.token, e)
			if bc, ok := it.done.(message.BatchCompletion); ok && !containsBC(batches, bc) {
				batches = append(batches, bc)
			}
		}
		for _, bc := range batches {
			bc.DurableBatchEnd()
		}
		clear(items)
		l.pmu.Lock()
		l.pspareI = items[:0]
		l.pmu.Unlock()
	}
}

func containsBC(s []message.BatchCompletion, c message.BatchCompletion) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

// knownDown reports whether the owner is known to be unreachable now: a
// request found it so within the lease, and the transport (when it can
// tell) has no connection to it. Publishes to it then fail at once rather
// than each batch waiting the transport's ConnectWait for a connection
// that is not coming: one publisher's batches to a down node would
// otherwise hold its acknowledgements a second each. Once the transport
// has a connection again, requests go as before.
func (l *link) knownDown() bool {
	c, ok := l.f.tr.(interface{ Connected(transport.NodeID) bool })
	if !ok {
		return false
	}
	l.mu.Lock()
	down := l.f.cfg.Clock.Now().Before(l.downUntil)
	l.mu.Unlock()
	return down && !c.Connected(l.node)
}

// Publishes routed to a transient (exclusive or non-durable) queue of an
// owner that has just become unreachable wait up to transientWait for the
// queue's deletion: a crashed owner's transient queues are deleted within
// a fraction of a second (internal/cluster/crashed.go), and a publish to a
// queue deleted before it was confirmed is confirmed, as RabbitMQ's
// channel confirms a publish whose queue went away normally (user8 F1: a
// Celery worker's pidbox broadcast, reconnected to a survivor at once).
// Only in the first freshWindow of the owner's absence: after that (a
// partition, the queue kept for down_grace) they are nacked at once.
const (
	transientWait = time.Second
	freshWindow   = 2 * time.Second
	deletedPoll   = 10 * time.Millisecond
)

// deleted reports whether q is no longer its vhost's queue of that name.
func deleted(q *broker.Queue) bool {
	return q != nil && q.VHost().QueueByID(q.Name(), q.ID()) != q
}

func transientQueue(q *broker.Queue) bool {
	c := q.Config()
	return c.Exclusive || !c.Durable
}

// awaitTransientGone waits, within transientWait and only while the
// owner's absence is fresh, until every transient queue of items is
// deleted (a bounded poll: deletion is applied by the metadata group).
func (l *link) awaitTransientGone(items []pubWaiter) {
	l.mu.Lock()
	fresh := time.Since(l.downSince) < freshWindow // wall time: the poll below is wall time too
	l.mu.Unlock()
	if !fresh {
		return
	}
	deadline := time.Now().Add(transientWait)
	for time.Now().Before(deadline) {
		waiting := false
		for _, it := range items {
			if it.q != nil && transientQueue(it.q) && !deleted(it.q) {
				waiting = true
				break
			}
		}
		if !waiting {
			return
		}
		time.Sleep(deletedPoll)
	}
}

// failed records a request error: an unreachable owner is not waited on
// for counts for a while.
func (l *link) failed(err error) {
	if errors.Is(err, transport.ErrUnreachable) || errors.Is(err, context.DeadlineExceeded) {
		now := l.f.cfg.Clock.Now()
		l.mu.Lock()
		if !now.Before(l.downUntil) {
			l.downSince = time.Now() // wall time, as awaitTransientGone's
		}
		l.downUntil = now.Add(l.f.cfg.LeaseTimeout)
		l.mu.Unlock()
	}
}

// addOpLocked queues a control operation, merging it into the last one
// when both settle the same consumer's deliveries the same way.
func (l *link) addOpLocked(op ctlOp) {
	if n := len(l.ctl); n > 0 && op.IDs != nil {
		last := &l.ctl[n-1]
		if last.Op == op.Op && last.Consumer == op.Consumer && last.IDs != nil {
			last.IDs = append(last.IDs, op.IDs...)
			return
		}
	}
	l.ctl = append(l.ctl, op)
}

// kickLocked starts the control sender if it is not running.
func (l *link) kickLocked() {
	if !l.csending && (len(l.ctl) > 0 || len(l.credit) > 0) {
		l.csending = true
		go l.sendControl()
	}
}

// sendControl sends queued control operations, one request at a time.
// Every operation is idempotent (settles by id, cumulative credit), so a
// failed request is sent again, until the link is given up (its owner
// silent past the lease), when the owner has requeued everything anyway.
func (l *link) sendControl() {
	var retry []ctlOp
	for {
		l.mu.Lock()
		if len(retry) == 0 && len(l.ctl) == 0 && len(l.credit) == 0 {
			l.csending = false
			l.mu.Unlock()
			return
		}
		ops := append(retry, l.ctl...)
		l.ctl = nil
		for c, r := range l.credit {
			ops = append(ops, ctlOp{Op: opCredit, Consumer: c, Released: r})
		}
		clear(l.credit)
		l.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), l.f.cfg.RequestTimeout)
		_, err := l.f.tr.Request(ctx, l.node, KindControl, appendControl(nil, l.f.epoch, ops))
		cancel()
		retry = nil
		if err == nil {
			continue
		}
		l.failed(err)
		now := l.f.cfg.Clock.Now()
		l.mu.Lock()
		gaveUp := now.Sub(l.lastOK) > l.f.cfg.LeaseTimeout
		l.mu.Unlock()
		if gaveUp {
			l.f.log.Debug("forwarded settles dropped: the queue's node is gone", "node", l.node, "ops", len(ops), "err", err)
			continue
		}
		retry = ops
		l.f.cfg.Clock.Sleep(min(l.f.cfg.KeepaliveInterval/4, 250*time.Millisecond))
	}
}
