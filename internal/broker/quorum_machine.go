package broker

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// quorumMachine is a quorum queue's replicated state machine, modelled on
// RabbitMQ's rabbit_fifo: every replica applies the same commands
// (quorum_codec.go) in the same order and reaches the same state — the
// messages, which are ready and which are checked out to which consumer,
// the consumers with their credit, and the counters. It assigns ready
// messages to consumers itself, on every replica, so the node hosting a
// consumer delivers from its own replica and nothing is forwarded.
//
// Apply is deterministic: it reads no clock, no randomness and no
// node-local fact; "now" is the largest timestamp of the tick entries
// applied, which only the leader proposes (the leader's clock decides
// expiry, as in rabbit_fifo).
// What it leaves for the node to do (deliveries to this node's consumers,
// dead letters) it appends to deliveries and dead, which the owner drains
// after each Apply. The machine has no lock of its own: its owner
// (quorumBackend) serialises every call.
type quorumMachine struct {
	cfg quorumConfig

	now       int64  // UnixNano: the largest tick timestamp applied
	nextID    uint64 // the next message's id
	nextOrder uint64 // the next consumer's registration order (from 1)
	rr        uint64 // round-robin position among consumers
	uses      uint64 // x-expires: how often a checkout, a cancel, a get or a redeclare (touch) used the queue

	msgs       qindex // every message, by id
	ready      qring  // ordered by id
	readyBytes int64
	msgBytes   int64 // size of every message in msgs (StateSize)
	unacked    int
	consumers  []*qconsumer // by order
	active     *qconsumer   // single active consumer, when cfg.singleActive

	// Effects of the last Apply, drained by the owner.
	deliveries []qdelivery
	dead       []qdead

	// bodyIn and bodyOut account message bodies entering and leaving the
	// machine (the broker's memory alarm); nil in tests.
	bodyIn, bodyOut func(size int64)
}

// quorumConfig is what a quorum queue's arguments say to its machine. It
// comes from the queue's declaration, identical on every replica.
type quorumConfig struct {
	ttl           time.Duration
	hasTTL        bool
	maxLength     int64 // -1 when unset
	maxBytes      int64 // -1 when unset
	overflow      Overflow
	deliveryLimit int64 // -1: unlimited
	hasDLX        bool
	singleActive  bool
}

func quorumConfigOf(a *queueArgs) quorumConfig {
	return quorumConfig{ttl: a.messageTTL, hasTTL: a.hasTTL, maxLength: a.maxLength, maxBytes: a.maxBytes,
		overflow: a.overflow, deliveryLimit: a.quorum.deliveryLimit, hasDLX: a.hasDLX, singleActive: a.singleActive}
}

// qmsg is a message in the machine: ready (owner nil) or checked out.
// The machine keeps its record as the entry brought it, undecoded: every
// replica needs only its size and expiry, which Apply reads from the
// record (message.PeekRecord); the node that delivers a message decodes
// it (decodeRecord), the others never do.
type qmsg struct {
	id  uint64
	rec []byte // the message's record (message.AppendMessage); aliases the Raft entry until a snapshot copies it, never changed
	// published and ttl are what expiry needs of the record: its
	// publication (UnixNano) and its own expiration (-1: none or invalid).
	published int64
	ttl       time.Duration
	size      int64
	expires   int64  // UnixNano; 0: never
	count     uint32 // failed deliveries: x-delivery-count, against x-delivery-limit
	acquired  uint32 // times checked out (0: unknown, from a version 1 snapshot): names one delivery
	delivered bool   // was checked out and came back: redelivered
	own       bool   // rec is a copy of its own, not part of a Raft entry (appendSnapshot)
	owner     *qconsumer
	// prev and next link the messages checked out to owner (qconsumer.hold).
	prev, next *qmsg
}

func (m *qmsg) redelivered() bool { return m.delivered || m.count > 0 }

// Consumer states.
type qstatus uint8

const (
	qsUp        qstatus = iota + 1 // takes messages while it has credit
	qsDown                         // its node was reported down: takes none until node-up
	qsCancelled                    // cancelled; stays while it holds messages
	qsGet                          // basic.get's holder of a node's unacked gets
)

// qconsumer is a checkout: a consumer on some node.
type qconsumer struct {
	node, key uint64
	order     uint64
	prefetch  uint32 // 0: unlimited
	priority  int32
	status    qstatus
	exclusive bool
	// first heads the list of the messages checked out to it (hold,
	// release); nout counts them.
	first *qmsg
	nout  int
}

func (c *qconsumer) hasCredit() bool {
	return c.status == qsUp && (c.prefetch == 0 || c.nout < int(c.prefetch))
}

// qdelivery is an assignment for the consumer's node to deliver: the
// machine gives the record, the consumer's node decodes it into msg.
type qdelivery struct {
	node, key   uint64
	id          uint64
	rec         []byte
	msg         *message.Message // set by the backend for its own consumers' deliveries
	redelivered bool
	count       uint32 // delivery count: x-delivery-count
	acquired    uint32 // the message's checkouts so far, this one included: its settlements name it
	remaining   int
}

// qgot is the result of a get command; the proposer decodes the record.
type qgot struct {
	id          uint64
	rec         []byte
	redelivered bool
	count       uint32
	acquired    uint32
	remaining   int
}

// qdead is a message the machine dropped for a reason that dead-letters
// it: the leader decodes and publishes it (quorumBackend.deadLetters).
type qdead struct {
	rec    []byte
	reason string
}

// Results of commands that a proposer can be refused.
var (
	errQuorumRejected  = errors.New("broker: the quorum queue is full (x-overflow reject-publish)")
	errQuorumExclusive = errors.New("broker: the quorum queue has an exclusive consumer")
)

func newQuorumMachine(cfg quorumConfig) *quorumMachine {
	return &quorumMachine{cfg: cfg, nextOrder: 1}
}

// Apply applies one committed entry and returns its result for the
// proposer: an error for a refused (or corrupt) command, *qgot for a get,
// the purged count for a purge, nil otherwise. A corrupt entry changes
// nothing, on every replica alike.
func (m *quorumMachine) Apply(_ uint64, data []byte) any {
	c, err := decodeQCmd(data)
	if err != nil {
		return err
	}
	if c.kind == qcTick {
		// Only the leader proposes ticks, with its clock: a node whose
		// clock runs ahead cannot expire messages early by proposing
		// anything else, and "now" never has to come back.
		m.now = max(m.now, c.ts)
	}
	m.expireHeads()
	var res any
	switch c.kind {
	case qcEnqueue:
		if err := m.enqueue(c.record); err != nil {
			res = err
		}
	case qcCheckout:
		if err := m.checkout(&c); err != nil {
			res = err
		}
	case qcCancel, qcCancelAt:
		m.cancel(&c)
	case qcSettle, qcSettleAt:
		m.settle(&c)
	case qcReturn, qcReturnAt:
		m.giveBack(&c)
	case qcDiscard, qcDiscardAt:
		m.discard(&c)
	case qcGet:
		if g := m.get(&c); g != nil {
			res = g
		}
	case qcPurge:
		res = m.purge()
	case qcTick:
	case qcTouch:
		m.uses++
	case qcNodeDown:
		m.nodeDown(c.target)
	case qcNodeUp:
		for _, q := range m.consumers {
			if q.node == c.target && q.status == qsDown {
				q.status = qsUp
			}
		}
	case qcNodeRestarted:
		m.dropEpochsOtherThan(c.target, c.epoch)
	case qcConfig:
		m.setConfig(c.conf)
	}
	m.pickActive()
	m.expireHeads()
	m.assign()
	return res
}

// expiry is when a message published at published expires here: the
// earlier of the queue's x-message-ttl and the message's expiration; 0 for
// never. A message lives while now <= expires.
func (m *quorumMachine) expiry(q *qmsg) int64 {
	var exp int64
	set := false
	if m.cfg.hasTTL {
		exp, set = q.published+int64(m.cfg.ttl), true
	}
	if q.ttl >= 0 {
		if e := q.published + int64(q.ttl); !set || e < exp {
			exp, set = e, true
		}
	}
	if set && exp == 0 {
		exp = 1
	}
	return exp
}

// newMsg makes a message of rec, which it keeps: the caller must not
// change rec afterwards (an entry's bytes are never changed once
// committed). message.PeekRecord accepts exactly the records the decoder
// accepts, so a record that could not be delivered is refused here, on
// every replica alike (review10 Q2), as when every replica decoded it.
func (m *quorumMachine) newMsg(rec []byte) (*qmsg, error) {
	info, err := message.PeekRecord(rec)
	if err != nil {
		return nil, err
	}
	return m.msgOf(rec, info), nil
}

// msgOf makes a message of rec, which info describes.
func (m *quorumMachine) msgOf(rec []byte, info message.RecordInfo) *qmsg {
	q := &qmsg{rec: rec, published: info.Published, ttl: -1, size: int64(info.BodyLen)}
	if len(info.Expiration) > 0 {
		// As message.Message.TTL: milliseconds, a non-negative decimal;
		// anything else is no expiration.
		if ms, err := strconv.ParseInt(string(info.Expiration), 10, 64); err == nil && ms >= 0 {
			q.ttl = time.Duration(ms) * time.Millisecond
		}
	}
	q.expires = m.expiry(q)
	return q
}

func (m *quorumMachine) enqueue(rec []byte) error {
	q, err := m.newMsg(rec)
	if err != nil {
		return err
	}
	over := (m.cfg.maxLength >= 0 && int64(m.ready.len()) >= m.cfg.maxLength) ||
		(m.cfg.maxBytes >= 0 && m.readyBytes+q.size > m.cfg.maxBytes)
	if over && m.cfg.overflow != DropHead {
		return errQuorumRejected
	}
	q.id = m.nextID
	m.nextID++
	m.msgs.add(q)
	m.msgBytes += q.size
	if m.bodyIn != nil {
		m.bodyIn(q.size)
	}
	m.ready.pushBack(q)
	m.readyBytes += q.size
	for m.ready.len() > 0 && ((m.cfg.maxLength >= 0 && int64(m.ready.len()) > m.cfg.maxLength) ||
		(m.cfg.maxBytes >= 0 && m.readyBytes > m.cfg.maxBytes)) {
		m.drop(m.popReady(), "maxlen")
	}
	return nil
}

func (m *quorumMachine) popReady() *qmsg {
	q := m.ready.popFront()
	m.readyBytes -= q.size
	return q
}

// drop removes a message that is not checked out for good,
// dead-lettering it when the queue has a dead-letter exchange (reason ""
// for none: a purge).
func (m *quorumMachine) drop(q *qmsg, reason string) {
	m.msgs.remove(q)
	m.msgBytes -= q.size
	if m.bodyOut != nil {
		m.bodyOut(q.size)
	}
	if reason != "" && m.cfg.hasDLX {
		m.dead = append(m.dead, qdead{rec: q.rec, reason: reason})
	}
}

// expireHeads drops expired messages at the head of the ready list. As in
// RabbitMQ, only the head is examined: a message behind a longer-lived one
// expires when it reaches the head.
func (m *quorumMachine) expireHeads() {
	for m.ready.len() > 0 {
		h := m.ready.front()
		if h.expires == 0 || h.expires >= m.now {
			return
		}
		m.drop(m.popReady(), "expired")
	}
}

// nextExpiry is the earliest expiry of a ready head, 0 for none.
func (m *quorumMachine) nextExpiry() int64 {
	if m.ready.len() == 0 {
		return 0
	}
	return m.ready.front().expires
}

func (m *quorumMachine) consumer(node, key uint64) *qconsumer {
	for _, c := range m.consumers {
		if c.node == node && c.key == key {
			return c
		}
	}
	return nil
}

func (m *quorumMachine) checkout(c *qcmd) error {
	m.uses++
	m.dropEpochsOtherThan(c.node, uint32(c.key>>32))
	if q := m.consumer(c.node, c.key); q != nil {
		if q.status == qsUp || q.status == qsDown {
			q.prefetch, q.priority = c.prefetch, c.priority
		}
		return nil
	}
	exclusive := c.flags&qfExclusive != 0
	for _, q := range m.consumers {
		if (q.status == qsUp || q.status == qsDown) && (q.exclusive || exclusive) {
			return errQuorumExclusive
		}
	}
	m.consumers = append(m.consumers, &qconsumer{node: c.node, key: c.key, order: m.nextOrder, prefetch: c.prefetch,
		priority: c.priority, status: qsUp, exclusive: exclusive})
	m.nextOrder++
	return nil
}

// returnMsg puts a checked-out message back in the ready list at its
// original place. delivered marks it redelivered; counted adds a delivery
// (an explicit return by a consumer), after which a message past the
// delivery limit is dead-lettered (or dropped) instead.
func (m *quorumMachine) returnMsg(q *qmsg, delivered, counted bool) {
	q.owner.release(q)
	m.unacked--
	q.delivered = q.delivered || delivered
	if counted {
		q.count++
		if m.cfg.deliveryLimit >= 0 && int64(q.count) > m.cfg.deliveryLimit {
			m.drop(q, "delivery_limit")
			return
		}
	}
	m.ready.insertSorted(q)
	m.readyBytes += q.size
}

// removeIfDone forgets a consumer that takes no more messages once it
// holds none.
func (m *quorumMachine) removeIfDone(q *qconsumer) {
	if q.nout > 0 || q.status == qsUp || q.status == qsDown {
		return
	}
	m.removeConsumer(q)
}

func (m *quorumMachine) removeConsumer(q *qconsumer) {
	if i := slices.Index(m.consumers, q); i >= 0 {
		m.consumers = slices.Delete(m.consumers, i, i+1)
	}
	if m.active == q {
		m.active = nil
	}
}

func (m *quorumMachine) cancel(c *qcmd) {
	q := m.consumer(c.node, c.key)
	if q == nil || q.status == qsGet || q.status == qsCancelled {
		return
	}
	keep := map[uint64]uint32{} // id → acquired (0: any)
	for _, id := range c.ids {
		keep[id] = 0
	}
	for _, r := range c.keep {
		keep[r.id] = r.acquired
	}
	// What the consumer's node never handed out goes back to its original
	// place, marked redelivered as RabbitMQ marks what a cancelled
	// consumer returns: later messages may have gone to other consumers
	// meanwhile (a cancel that waited for a leader while the machine still
	// assigned to the consumer, up to its credit), and unmarked these
	// would be first deliveries after them, out of publish order. A
	// cancel-at keeps a message only from the delivery its node handed
	// out, not from a later one (returned and assigned to it again).
	for _, msg := range sortedOut(q) {
		acq, kept := keep[msg.id]
		if !kept || (acq != 0 && msg.acquired != 0 && msg.acquired != acq) {
			m.returnMsg(msg, true, false)
		}
	}
	q.status = qsCancelled
	if m.active == q {
		m.active = nil
	}
	m.removeIfDone(q)
	m.uses++ // the x-expires countdown starts when the last consumer leaves
}

// owned returns the message ref names if the proposing node's consumer
// holds it from the delivery the ref names (its acquired count; 0 in the
// entries of version 1 kinds, which do not name one). A stale settlement —
// the message came back and went elsewhere, or came back and went to the
// same consumer again, or the entry is a retry of one that applied —
// finds nothing, so every settlement applies at most once.
func (m *quorumMachine) owned(node uint64, r qref) *qmsg {
	q := m.msgs.get(r.id)
	if q == nil || q.owner == nil || q.owner.node != node || q.owner.key != r.key {
		return nil
	}
	if r.acquired != 0 && q.acquired != 0 && r.acquired != q.acquired {
		return nil
	}
	return q
}

func (m *quorumMachine) settle(c *qcmd) {
	for _, r := range c.refs {
		if q := m.owned(c.node, r); q != nil {
			owner := q.owner
			owner.release(q)
			m.unacked--
			m.drop(q, "")
			m.removeIfDone(owner)
		}
	}
}

// giveBack returns messages to the ready list, marked redelivered. A
// version 1 return, and a version 2 one flagged failed (basic.reject with
// requeue), counts a failed delivery (RabbitMQ 4.3's delivery-count); a
// plain return (basic.nack with requeue, a closed channel) does not.
func (m *quorumMachine) giveBack(c *qcmd) {
	counted := c.kind == qcReturn || c.flags&qfFailed != 0
	for _, r := range c.refs {
		if q := m.owned(c.node, r); q != nil {
			owner := q.owner
			m.returnMsg(q, true, counted)
			m.removeIfDone(owner)
		}
	}
}

func (m *quorumMachine) discard(c *qcmd) {
	for _, r := range c.refs {
		if q := m.owned(c.node, r); q != nil {
			owner := q.owner
			owner.release(q)
			m.unacked--
			m.drop(q, "rejected")
			m.removeIfDone(owner)
		}
	}
}

func (m *quorumMachine) get(c *qcmd) *qgot {
	m.uses++
	if m.ready.len() == 0 {
		return nil
	}
	m.dropEpochsOtherThan(c.node, uint32(c.key>>32))
	q := m.popReady()
	q.acquired++
	g := &qgot{id: q.id, rec: q.rec, redelivered: q.redelivered(), count: q.count, acquired: q.acquired, remaining: m.ready.len()}
	if c.flags&qfNoAck != 0 {
		m.drop(q, "")
		return g
	}
	holder := m.consumer(c.node, c.key)
	if holder == nil {
		holder = &qconsumer{node: c.node, key: c.key, order: m.nextOrder, status: qsGet}
		m.nextOrder++
		m.consumers = append(m.consumers, holder)
	}
	holder.hold(q)
	m.unacked++
	return g
}

func (m *quorumMachine) purge() int {
	n := m.ready.len()
	for m.ready.len() > 0 {
		m.drop(m.popReady(), "")
	}
	return n
}

// nodeDown returns every message checked out to consumers of node, marked
// redelivered but not counted as a delivery (the consumer did not refuse
// it), and stops assigning to them until node-up.
func (m *quorumMachine) nodeDown(node uint64) {
	for _, q := range slices.Clone(m.consumers) {
		if q.node != node {
			continue
		}
		for _, msg := range sortedOut(q) {
			m.returnMsg(msg, true, false)
		}
		if q.status == qsUp {
			q.status = qsDown
		}
		if m.active == q {
			m.active = nil
		}
		m.removeIfDone(q)
	}
}

// dropEpochsOtherThan removes the consumers of node made by another run of
// it (their keys carry another epoch), returning their messages: the node
// restarted and they are gone.
func (m *quorumMachine) dropEpochsOtherThan(node uint64, epoch uint32) {
	if !slices.ContainsFunc(m.consumers, func(q *qconsumer) bool { return q.node == node && uint32(q.key>>32) != epoch }) {
		return // the common case: checkouts and gets of the node's current run
	}
	for _, q := range slices.Clone(m.consumers) {
		if q.node != node || uint32(q.key>>32) == epoch {
			continue
		}
		for _, msg := range sortedOut(q) {
			m.returnMsg(msg, true, false)
		}
		m.removeConsumer(q)
	}
}

// pickActive chooses the single active consumer, when the queue has one:
// the current one while it is up, else the earliest registered that is.
func (m *quorumMachine) pickActive() {
	if !m.cfg.singleActive || (m.active != nil && m.active.status == qsUp) {
		return
	}
	m.active = nil
	for _, q := range m.consumers {
		if q.status == qsUp {
			m.active = q
			return
		}
	}
}

// pick chooses the consumer for the next ready message: the single active
// one, or among those with credit the highest priority, round-robin.
func (m *quorumMachine) pick() *qconsumer {
	if m.cfg.singleActive {
		if m.active != nil && m.active.hasCredit() {
			return m.active
		}
		return nil
	}
	n := len(m.consumers)
	var best *qconsumer
	for _, q := range m.consumers {
		if q.hasCredit() && (best == nil || q.priority > best.priority) {
			best = q
		}
	}
	if best == nil {
		return nil
	}
	for k := 0; k < n; k++ {
		i := int((m.rr + uint64(k)) % uint64(n))
		if q := m.consumers[i]; q.hasCredit() && q.priority == best.priority {
			m.rr = uint64(i) + 1
			return q
		}
	}
	return nil
}

// assign checks ready messages out to consumers with credit.
func (m *quorumMachine) assign() {
	for m.ready.len() > 0 {
		q := m.pick()
		if q == nil {
			return
		}
		msg := m.popReady()
		q.hold(msg)
		msg.acquired++
		m.unacked++
		m.deliveries = append(m.deliveries, qdelivery{node: q.node, key: q.key, id: msg.id, rec: msg.rec,
			redelivered: msg.redelivered(), count: msg.count, acquired: msg.acquired, remaining: m.ready.len()})
	}
}

// liveConsumers counts the consumers (not basic.get holders, not cancelled).
func (m *quorumMachine) liveConsumers() int {
	n := 0
	for _, q := range m.consumers {
		if q.status == qsUp || q.status == qsDown {
			n++
		}
	}
	return n
}

// consumerNodes lists the nodes whose consumers hold or may take messages.
func (m *quorumMachine) consumerNodes() []uint64 {
	var nodes []uint64
	for _, q := range m.consumers {
		if (q.status != qsDown || q.nout > 0) && !slices.Contains(nodes, q.node) {
			nodes = append(nodes, q.node)
		}
	}
	slices.Sort(nodes)
	return nodes
}
