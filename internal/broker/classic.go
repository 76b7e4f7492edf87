package broker

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
	"golang.org/x/time/rate"
)

// entry is a message's place in one queue. A persistent message of a
// durable queue may be paged out: msg is nil and the body waits in the log
// until the message is due.
type entry struct {
	msg         *message.Message
	seq         uint64
	expires     int64 // UnixNano; 0 means never
	size        int64 // body bytes
	level       uint8 // priority level
	persisted   bool  // stored in the queue's log
	redelivered bool
	unreadable  bool // paged out and the log failed to return it: dropped when due
}

// classicBackend is a classic queue: a FIFO of messages per priority level
// with competing consumers, TTLs, length limits, dead-lettering and, for a
// durable queue, persistent messages in its log with bodies paged out past
// the queue's memory share (classic_page.go).
//
// mu guards every field below it; methods named …Locked expect it held.
// Lock order is mu → consumer internals (Consumer.TryDeliver is called with
// mu held and must not call back into the queue). Dead-lettering,
// auto-delete and reading paged-out bodies run after mu is released. The
// embedded Queue's fields are immutable.
type classicBackend struct {
	*Queue

	// refusals are the records of this queue that a storage failure cut
	// away (their publishers were nacked) and that the ready list may
	// still hold; refusedNew says there are some. The log reports them
	// with its own lock held, so they have a lock of their own, never
	// held while calling the log. Allocated at the first refusal.
	refusals   atomic.Pointer[refusals]
	refusedNew atomic.Bool

	// The fields below, and those of ex, are guarded by mu. The order
	// packs them: an offline MQTT session's queue is one of these
	// (192 bytes, down from 336 with its level array, timers and totals
	// inline).
	hadConsumer       bool
	exclusiveConsumer bool
	deleted           bool
	paging            bool // a page-in is reading bodies (classic_page.go)
	pageWanted        bool // dispatch stopped at a paged-out head
	mu                sync.Mutex
	rateMark          atomic.Uint32 // the rate sampler's view of it (queue_activity.go); beside mu, in its padding
	levels            []deque       // ready messages, one deque per priority level (index = priority)
	one               [1]deque      // levels' array when the queue has no priorities
	readyCount        int
	readySize         int64 // body bytes of the ready messages
	memBytes          int64 // bodies of ready messages held in memory
	unacked           int
	nextSeq           uint64
	consumers         []*consumerReg // sorted by priority (high first), then registration order
	consumerN         uint64         // registration counter
	rr                uint64
	ex                *classicExtra // nil until first needed (extraLocked)
}

// refusals are a classic queue's refused sequence ranges (refused).
type refusals struct {
	mu     sync.Mutex
	ranges [][2]uint64
}

// classicExtra is what a classic queue holds only once used: its message
// totals (from its first message), its timers (a TTL, x-expires) and its
// delivery pacing (x-deliver-rate). An idle queue (an offline MQTT session
// after a restart) has none, so they are apart and allocated when first
// needed; guarded by the queue's mu.
type classicExtra struct {
	stats       MessageStats  // running totals for the management API (queue_stats.go)
	pacer       *rate.Limiter // x-deliver-rate: a leaky bucket spacing deliveries; has its own lock
	expiryTimer clock.Timer
	expiryAt    int64
	unusedTimer clock.Timer
	unusedGen   uint64
	paceTimer   clock.Timer // the broker's clock (Config.Clock) drives all three timers
}

func newClassicBackend(q *Queue) *classicBackend {
	c := &classicBackend{Queue: q}
	if q.args.maxPriority == 0 {
		c.levels = c.one[:]
	} else {
		c.levels = make([]deque, int(q.args.maxPriority)+1)
	}
	if r := q.args.deliverRate; r > 0 {
		// A leaky bucket: one delivery every 1/rate seconds, so a backlog
		// goes out as a smooth stream. The burst covers one timer tick
		// (20 ms) so timer lateness does not lower the rate.
		c.extraLocked().pacer = rate.NewLimiter(rate.Limit(r), max(1, int(math.Ceil(r/50))))
	}
	return c
}

// extraLocked returns the queue's classicExtra, allocating it.
func (q *classicBackend) extraLocked() *classicExtra {
	if q.ex == nil {
		q.ex = &classicExtra{}
	}
	return q.ex
}

// pacerLocked returns the x-deliver-rate bucket, nil without one.
func (q *classicBackend) pacerLocked() *rate.Limiter {
	if q.ex == nil {
		return nil
	}
	return q.ex.pacer
}

// statsLocked returns the queue's message totals.
func (q *classicBackend) statsLocked() MessageStats {
	if q.ex == nil {
		return MessageStats{}
	}
	return q.ex.stats
}

func (q *classicBackend) counts() (ready, unacked, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dropRefusedLocked()
	return q.readyCount, q.unacked, len(q.consumers)
}

func (q *classicBackend) readyBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readySize
}

func (q *classicBackend) levelFor(prio uint8) uint8 {
	return min(prio, q.args.maxPriority)
}

// expiry computes when a message expires in this queue: the earlier of the
// queue's x-message-ttl and the message's own expiration, counted from
// publication.
func (q *classicBackend) expiry(published int64, ttl time.Duration, hasTTL bool) int64 {
	var exp int64
	if q.cur().hasTTL {
		exp = published + int64(q.cur().messageTTL)
	}
	if hasTTL {
		if e := published + int64(ttl); exp == 0 || e < exp {
			exp = e
		}
	}
	if exp == 0 && (q.cur().hasTTL || hasTTL) {
		exp = 1 // a TTL of 0 at time 0: expired unless delivered at once
	}
	return exp
}

func (q *classicBackend) expiryFor(m *message.Message) int64 {
	ttl, ok, _ := perMessageTTL(m)
	return q.expiry(m.Published, ttl, ok)
}

// publish enqueues m (or hands it straight to a consumer). A persistent
// message in a durable queue is appended to the log; done learns when it is
// durable and pending reports that it will.
func (q *classicBackend) publish(m *message.Message, done message.Completion, token uint64) (out PublishOutcome, pending bool) {
	var dead []deadLetter
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return Dropped, false
	}
	q.dropRefusedLocked() // refused entries must not count against a length limit
	if q.overLimitForLocked(m) {
		switch q.cur().overflow {
		case RejectPublish:
			q.mu.Unlock()
			return Rejected, false
		case RejectPublishDLX:
			dead = append(dead, deadLetter{msg: m, reason: "maxlen"})
			q.mu.Unlock()
			q.deadLetter(dead)
			return Rejected, false
		}
	}
	e := entry{msg: m, seq: q.nextSeq, expires: q.expiryFor(m), size: m.Size(), level: q.levelFor(m.Props.Priority)}
	if q.log != nil && m.Persistent() {
		if err := q.log.Append(e.seq, m, done, token); err != nil {
			q.mu.Unlock()
			// Debug: the store logs once when writes start failing, not per message.
			q.vhost.broker.log.Debug("storage refused a message", "queue", q.cfg.Name, "err", err)
			return Rejected, false
		}
		e.persisted, pending = true, done != nil
	}
	q.nextSeq++
	q.extraLocked().stats.Published++
	q.noteActive()
	q.vhost.broker.bodyIn(e.size)
	if q.readyCount == 0 && q.pacerLocked() == nil && q.tryDeliverLocked(&e) {
		q.mu.Unlock()
		return Enqueued, pending
	}
	q.pushReadyLocked(e)
	dead = q.enforceLimitsLocked(dead)
	dead = q.dispatchLocked(q.nowNano(), dead)
	q.armExpiryLocked()
	q.unlockThen(dead)
	return Enqueued, pending
}

// pushReadyLocked appends e to the ready list, paging its body out when the
// queue already holds its share of memory and the log has the message.
func (q *classicBackend) pushReadyLocked(e entry) {
	if e.msg != nil && e.persisted && q.memBytes+e.size > q.vhost.broker.cfg.QueueMemoryLimit {
		e.msg = nil
		q.vhost.broker.bodyOut(e.size)
		q.vhost.broker.pagedIn(1)
	}
	if e.msg != nil {
		q.memBytes += e.size
	}
	q.levels[e.level].pushBack(e)
	q.readyCount++
	q.readySize += e.size
	q.noteActive()
}

// overLimitForLocked reports whether accepting m would exceed a length limit.
func (q *classicBackend) overLimitForLocked(m *message.Message) bool {
	if q.cur().maxLength >= 0 && int64(q.readyCount) >= q.cur().maxLength {
		return true
	}
	return q.cur().maxBytes >= 0 && q.readySize+m.Size() > q.cur().maxBytes
}

// enforceLimitsLocked drops messages from the head while a length limit is
// exceeded (x-overflow=drop-head), dead-lettering them with reason maxlen.
func (q *classicBackend) enforceLimitsLocked(dead []deadLetter) []deadLetter {
	if q.cur().overflow != DropHead {
		return dead
	}
	for q.readyCount > 0 && ((q.cur().maxLength >= 0 && int64(q.readyCount) > q.cur().maxLength) ||
		(q.cur().maxBytes >= 0 && q.readySize > q.cur().maxBytes)) {
		e := q.popOldestLowLocked()
		dead = q.dropLocked(e, "maxlen", dead)
	}
	return dead
}

// popOldestLowLocked pops the head of the lowest non-empty priority level,
// the message RabbitMQ drops first.
func (q *classicBackend) popOldestLowLocked() entry {
	for i := range q.levels {
		if q.levels[i].len() > 0 {
			return q.popLevelLocked(i)
		}
	}
	panic("broker: popOldestLowLocked on an empty queue")
}

func (q *classicBackend) popLevelLocked(i int) entry {
	e := q.levels[i].popFront()
	q.noteActive()
	q.readyCount--
	q.readySize -= e.size
	if e.msg != nil {
		q.memBytes -= e.size
	}
	return e
}

// dropLocked removes a popped ready entry for good, dead-lettering it when
// the queue has a dead-letter exchange. A paged-out body is read, and the
// entry settled, by deadLetter once the lock is released.
func (q *classicBackend) dropLocked(e entry, reason string, dead []deadLetter) []deadLetter {
	if q.cur().hasDLX && !e.unreadable {
		if e.msg == nil {
			return append(dead, deadLetter{reason: reason, seq: e.seq, paged: true})
		}
		dead = append(dead, deadLetter{msg: e.msg, reason: reason})
	}
	q.settle(e.seq, e.size, e.msg != nil, e.persisted)
	return dead
}

// headLocked returns the level holding the next message to deliver (the
// highest priority with messages), or -1.
func (q *classicBackend) headLocked() int {
	for i := len(q.levels) - 1; i >= 0; i-- {
		if q.levels[i].len() > 0 {
			return i
		}
	}
	return -1
}

// get takes one message for basic.get. ok is false when the queue is empty.
// With noAck the message is settled at once; otherwise the caller must Ack
// or Requeue it.
func (q *classicBackend) get(noAck bool) (d Delivery, ok bool) {
	var dead []deadLetter
	q.mu.Lock()
	q.touchLocked()
	for {
		dead = q.expireHeadsLocked(q.nowNano(), dead)
		lvl := q.headLocked()
		if lvl < 0 {
			break
		}
		if h := q.levels[lvl].front(); h.msg == nil && !h.unreadable {
			// Read the body without the lock, then look again: the head
			// may have been taken meanwhile.
			r := pageRef{level: lvl, seq: h.seq}
			q.mu.Unlock()
			m, err := q.log.Read(r.seq)
			q.mu.Lock()
			q.installLocked(r, m, err)
			continue
		}
		e := q.popLevelLocked(lvl)
		if e.msg == nil { // unreadable
			q.settle(e.seq, e.size, false, e.persisted)
			continue
		}
		d = Delivery{Queue: q.Queue, Msg: e.msg, Seq: e.seq, Redelivered: e.redelivered, Remaining: q.readyCount, persisted: e.persisted}
		ok = true
		q.countDeliveryLocked(&e, noAck)
		break
	}
	q.armExpiryLocked()
	q.unlockThen(dead)
	return d, ok
}

// countDeliveryLocked does the bookkeeping of a delivery of e (its message
// in memory): settle at once for no-ack, else count it unacked and, for a
// stored message, record the delivery so a restart marks it redelivered.
func (q *classicBackend) countDeliveryLocked(e *entry, noAck bool) {
	st := &q.vhost.broker.stats
	st.delivered.Add(1)
	ex := q.extraLocked()
	ex.stats.Delivered++
	q.noteActive()
	if e.redelivered {
		st.redelivered.Add(1)
		ex.stats.Redelivered++
	}
	if noAck {
		q.settle(e.seq, e.size, true, e.persisted)
		return
	}
	q.unacked++
	if e.persisted {
		q.log.Delivered(e.seq)
	}
}

// purge removes every ready message and returns how many there were.
func (q *classicBackend) purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.readyCount
	q.clearReadyLocked(true)
	return n
}

// clearReadyLocked drops every ready message; ackLog says whether the log
// records them consumed (a purge) or not (a delete: see close).
func (q *classicBackend) clearReadyLocked(ackLog bool) {
	for i := range q.levels {
		for q.levels[i].len() > 0 {
			e := q.popLevelLocked(i)
			q.settle(e.seq, e.size, e.msg != nil, e.persisted && ackLog)
		}
	}
}

// restoreLocked loads the messages a durable queue's log recovered: they
// stay paged out until due.
func (q *classicBackend) restoreLocked(stored []message.StoredMessage) {
	for _, sm := range stored {
		e := entry{seq: sm.Seq, size: sm.Size, level: q.levelFor(sm.Priority), persisted: true, redelivered: sm.Delivered,
			expires: q.expiry(sm.Published, sm.TTL, sm.HasTTL)}
		q.levels[e.level].pushBack(e)
		q.readyCount++
		q.readySize += e.size
	}
	q.vhost.broker.pagedIn(len(stored))
	q.nextSeq = q.log.NextSeq()
	if len(stored) > 0 {
		q.noteActive()
	}
	q.armExpiryLocked()
}

// restore loads the messages the log recovered at start-up.
func (q *classicBackend) restore() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	stored := q.log.Recovered()
	q.restoreLocked(stored)
	q.touchLocked()
	return len(stored)
}

// close marks the queue deleted and drops its ready messages; unacked ones
// are settled as their consumers let go of them (requeue finds the queue
// deleted).
func (q *classicBackend) close(ifUnused, ifEmpty bool) (int, []Consumer, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if ifUnused && len(q.consumers) > 0 {
		return 0, nil, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' in use", q.cfg.Name, q.vhost.name)
	}
	if ifEmpty && q.readyCount > 0 {
		return 0, nil, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' is not empty", q.cfg.Name, q.vhost.name)
	}
	n := q.readyCount
	q.deleted = true
	consumers := make([]Consumer, len(q.consumers))
	for i, r := range q.consumers {
		consumers[i] = r.c
	}
	q.consumers = nil
	// No ack records: the log goes with the queue once the delete is
	// durable, and if it never becomes durable the messages must still be
	// there after a restart.
	q.clearReadyLocked(false)
	if q.ex != nil && q.ex.expiryTimer != nil {
		q.ex.expiryTimer.Stop()
	}
	q.stopUnusedTimerLocked()
	return n, consumers, nil
}

// nowNano is the broker clock's time, in the UnixNano of message expiry
// times: TTLs, x-expires and paced delivery follow an injected clock in
// tests.
func (q *classicBackend) nowNano() int64 { return q.vhost.broker.cfg.Clock.Now().UnixNano() }

// refused records a range of this queue's sequence numbers whose records a
// storage failure cut away. It runs with the log's lock held, so it only
// notes them; the queue drops the entries under its own lock.
func (q *classicBackend) refused(first, last uint64) {
	r := q.refusals.Load()
	if r == nil {
		q.refusals.CompareAndSwap(nil, &refusals{})
		r = q.refusals.Load()
	}
	r.mu.Lock()
	r.ranges = append(r.ranges, [2]uint64{first, last})
	r.mu.Unlock()
	q.refusedNew.Store(true)
}

// dropRefusedLocked removes the ready entries whose records were refused
// and whose bodies are only in the log (a refused message still in memory
// stays deliverable: nothing is missing). Called on publish (length
// limits), dispatch and counts; an atomic load unless a failure reported
// something, then linear in the ready list, once per failure.
func (q *classicBackend) dropRefusedLocked() {
	if !q.refusedNew.Load() {
		return
	}
	r := q.refusals.Load() // set before refusedNew
	r.mu.Lock()
	rs := r.ranges
	r.ranges = nil
	q.refusedNew.Store(false)
	r.mu.Unlock()
	refused := func(seq uint64) bool {
		for _, r := range rs {
			if seq >= r[0] && seq <= r[1] {
				return true
			}
		}
		return false
	}
	for i := range q.levels {
		d := &q.levels[i]
		for n := d.len(); n > 0; n-- {
			e := d.popFront()
			if e.persisted && e.msg == nil && refused(e.seq) {
				q.readyCount--
				q.readySize -= e.size
				q.noteActive()
				q.settle(e.seq, e.size, false, true)
				continue
			}
			d.pushBack(e)
		}
	}
}
