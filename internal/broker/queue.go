package broker

import (
	"sync"
	"time"
)

// QueueConfig describes a queue to declare.
type QueueConfig struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	// Owner is the connection that owns an exclusive queue.
	Owner uint64
	Args  map[string]any
	// Internal hides the queue from listings (direct reply-to queues).
	Internal bool
}

// entry is a message's place in one queue.
type entry struct {
	msg         *Message
	seq         uint64
	expires     int64 // UnixNano; 0 means never
	redelivered bool
}

// Queue is a FIFO of messages with competing consumers.
type Queue struct {
	cfg   QueueConfig
	args  queueArgs
	vhost *VHost

	mu                sync.Mutex
	levels            []deque // ready messages, one deque per priority level (index = priority)
	readyCount        int
	readyBytes        int64
	unacked           int
	nextSeq           uint64
	consumers         []*consumerReg // sorted by priority (high first), then registration order
	consumerN         uint64         // registration counter
	hadConsumer       bool
	exclusiveConsumer bool
	rr                uint64
	deleted           bool
	expiryTimer       *time.Timer
	expiryAt          int64
	unusedTimer       *time.Timer
	unusedGen         uint64
	log               Log
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.cfg.Name }

// Config returns how the queue was declared.
func (q *Queue) Config() QueueConfig { return q.cfg }

// VHost returns the queue's virtual host.
func (q *Queue) VHost() *VHost { return q.vhost }

func newQueue(v *VHost, cfg QueueConfig, args queueArgs) *Queue {
	q := &Queue{cfg: cfg, args: args, vhost: v}
	q.levels = make([]deque, int(args.maxPriority)+1)
	return q
}

// Counts returns the ready and unacked message counts and the consumer count.
func (q *Queue) Counts() (ready, unacked, consumers int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyCount, q.unacked, len(q.consumers)
}

// ReadyBytes returns the body bytes of the ready messages.
func (q *Queue) ReadyBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readyBytes
}

// PublishOutcome is what a queue did with a published message.
type PublishOutcome int

// Publish outcomes.
const (
	Enqueued PublishOutcome = iota
	// Rejected means x-overflow=reject-publish(-dlx) refused the message:
	// the publisher gets a nack.
	Rejected
	// Dropped means the queue is gone; the message went nowhere.
	Dropped
)

func (q *Queue) levelOf(m *Message) int {
	if q.args.maxPriority == 0 {
		return 0
	}
	return int(min(m.Props.Priority, q.args.maxPriority))
}

// expiryFor computes when m expires in this queue: the earlier of the queue's
// x-message-ttl and the message's expiration, counted from publication.
func (q *Queue) expiryFor(m *Message) int64 {
	var exp int64
	if q.args.hasTTL {
		exp = m.Published + int64(q.args.messageTTL)
	}
	if ttl, ok, _ := m.perMessageTTL(); ok {
		if e := m.Published + int64(ttl); exp == 0 || e < exp {
			exp = e
		}
	}
	if exp == 0 && (q.args.hasTTL || m.Props.Expiration != "") {
		exp = 1 // a TTL of 0 at time 0: expired unless delivered at once
	}
	return exp
}

// publish enqueues m (or hands it straight to a consumer).
func (q *Queue) publish(m *Message) PublishOutcome {
	var dead []deadLetter
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return Dropped
	}
	if q.overLimitForLocked(m) {
		switch q.args.overflow {
		case RejectPublish:
			q.mu.Unlock()
			return Rejected
		case RejectPublishDLX:
			dead = append(dead, deadLetter{msg: m, reason: "maxlen"})
			q.mu.Unlock()
			q.deadLetter(dead)
			return Rejected
		}
	}
	e := entry{msg: m, seq: q.nextSeq, expires: q.expiryFor(m)}
	q.nextSeq++
	q.vhost.broker.accountBytes(m.Size())
	if q.readyCount == 0 && q.tryDeliverLocked(&e) {
		q.mu.Unlock()
		return Enqueued
	}
	q.pushReadyLocked(e)
	dead = q.enforceLimitsLocked(dead)
	dead = q.dispatchLocked(time.Now().UnixNano(), dead)
	q.armExpiryLocked()
	q.mu.Unlock()
	if len(dead) > 0 {
		q.deadLetter(dead)
	}
	return Enqueued
}

func (q *Queue) pushReadyLocked(e entry) {
	q.levels[q.levelOf(e.msg)].pushBack(e)
	q.readyCount++
	q.readyBytes += e.msg.Size()
}

// overLimitForLocked reports whether accepting m would exceed a length limit.
func (q *Queue) overLimitForLocked(m *Message) bool {
	if q.args.maxLength >= 0 && int64(q.readyCount) >= q.args.maxLength {
		return true
	}
	return q.args.maxBytes >= 0 && q.readyBytes+m.Size() > q.args.maxBytes
}

// enforceLimitsLocked drops messages from the head while a length limit is
// exceeded (x-overflow=drop-head), dead-lettering them with reason maxlen.
func (q *Queue) enforceLimitsLocked(dead []deadLetter) []deadLetter {
	if q.args.overflow != DropHead {
		return dead
	}
	for q.readyCount > 0 && ((q.args.maxLength >= 0 && int64(q.readyCount) > q.args.maxLength) ||
		(q.args.maxBytes >= 0 && q.readyBytes > q.args.maxBytes)) {
		e := q.popOldestLowLocked()
		dead = q.dropLocked(e, "maxlen", dead)
	}
	return dead
}

// popOldestLowLocked pops the head of the lowest non-empty priority level,
// the message RabbitMQ drops first.
func (q *Queue) popOldestLowLocked() entry {
	for i := range q.levels {
		if q.levels[i].len() > 0 {
			return q.popLevelLocked(i)
		}
	}
	panic("broker: popOldestLowLocked on an empty queue")
}

func (q *Queue) popLevelLocked(i int) entry {
	e := q.levels[i].popFront()
	q.readyCount--
	q.readyBytes -= e.msg.Size()
	return e
}

// dropLocked removes a ready entry for good, dead-lettering it when the queue
// has a dead-letter exchange.
func (q *Queue) dropLocked(e entry, reason string, dead []deadLetter) []deadLetter {
	q.vhost.broker.accountBytes(-e.msg.Size())
	if q.log != nil {
		q.log.Ack(e.seq)
	}
	if q.args.hasDLX {
		dead = append(dead, deadLetter{msg: e.msg, reason: reason})
	}
	return dead
}

// headLocked returns the level holding the next message to deliver (the
// highest priority with messages), or -1.
func (q *Queue) headLocked() int {
	for i := len(q.levels) - 1; i >= 0; i-- {
		if q.levels[i].len() > 0 {
			return i
		}
	}
	return -1
}

// Get takes one message for basic.get. ok is false when the queue is empty.
// With noAck the message is settled at once; otherwise the caller must Ack
// or Requeue it.
func (q *Queue) Get(noAck bool) (d Delivery, ok bool) {
	var dead []deadLetter
	q.mu.Lock()
	q.touchLocked()
	now := time.Now().UnixNano()
	dead = q.expireHeadsLocked(now, dead)
	lvl := q.headLocked()
	if lvl >= 0 {
		e := q.popLevelLocked(lvl)
		d = Delivery{Queue: q, Msg: e.msg, Seq: e.seq, Redelivered: e.redelivered, Remaining: q.readyCount}
		ok = true
		q.vhost.broker.stats.delivered.Add(1)
		if e.redelivered {
			q.vhost.broker.stats.redelivered.Add(1)
		}
		if noAck {
			q.settleLocked(e.seq, e.msg)
		} else {
			q.unacked++
		}
	}
	q.armExpiryLocked()
	q.mu.Unlock()
	if len(dead) > 0 {
		q.deadLetter(dead)
	}
	return d, ok
}

// Purge removes every ready message and returns how many there were.
func (q *Queue) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.readyCount
	for i := range q.levels {
		for q.levels[i].len() > 0 {
			e := q.popLevelLocked(i)
			q.settleLocked(e.seq, e.msg)
		}
	}
	return n
}

// settleLocked forgets a message for good (acked, or delivered without ack).
func (q *Queue) settleLocked(seq uint64, m *Message) {
	q.vhost.broker.accountBytes(-m.Size())
	if q.log != nil {
		q.log.Ack(seq)
	}
}
