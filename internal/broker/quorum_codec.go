package broker

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/message"
)

// A quorum queue's Raft entries are commands of its state machine
// (quorum_machine.go), encoded here. Every entry starts with a header:
//
//	kind uint8 | node uint64 | ts int64
//
// node is the proposing node (its Replication.Node): the owner of the
// consumer keys in the body. ts is the proposer's clock (UnixNano) when it
// proposed; the machine's notion of "now" is the largest ts of the tick
// entries it has applied (the leader's clock), so TTL expiry is decided by
// the entries, identically on every replica. Integers are big-endian. The
// bodies by kind:
//
//	enqueue        message record (message.AppendMessage); ts = its Published
//	checkout       key uint64 | prefetch uint32 | priority int32 | flags uint8 (1: exclusive)
//	cancel         key uint64 | n uint32 | n × id uint64 (ids the consumer's node still holds: they stay checked out)
//	cancel-at      key uint64 | n uint32 | n × (id uint64 | acquired uint32) (the same, naming the deliveries held)
//	settle, return,
//	discard        n uint32 | n × (key uint64 | id uint64)   (version 1: a return counts a failed delivery)
//	settle-at,
//	discard-at     n uint32 | n × (key uint64 | id uint64 | acquired uint32)
//	return-at      flags uint8 (1: failed, counts a delivery) | n uint32 | n × (key | id | acquired)
//	get            key uint64 | flags uint8 (1: no-ack)
//	purge, tick,
//	touch          (none)
//	node-down,
//	node-up        target node uint64
//	node-restarted target node uint64 | epoch uint32
//	config         the queue's settings as a policy changed them (quorum_policy.go)
//
// A consumer is named by (node, key): keys are made by the consumer's node,
// the high 32 bits being the epoch of the process that made it, so a key
// never names a consumer of an earlier run of the node. A settlement of
// the -at kinds also names the delivery (the message's acquired count when
// it was checked out to that consumer), so a retried or stale one applies
// at most once; the backend proposes only those, and the machine still
// applies the version 1 kinds found in older logs.

// qcmdKind is the kind of a quorum command.
type qcmdKind uint8

// Quorum command kinds. The values are stored in Raft logs: never renumber.
const (
	qcEnqueue qcmdKind = iota + 1
	qcCheckout
	qcCancel
	qcSettle
	qcReturn
	qcDiscard
	qcGet
	qcPurge
	qcTick
	qcNodeDown
	qcNodeUp
	qcNodeRestarted
	qcTouch
	qcSettleAt
	qcReturnAt
	qcDiscardAt
	qcCancelAt
	qcConfig
)

const qcmdHeader = 17

// qref names a message checked out to a consumer of the proposing node,
// and in the -at kinds the delivery (acquired; 0: any).
type qref struct {
	key, id  uint64
	acquired uint32
}

// qcmd is a decoded quorum command. Fields not used by its kind are zero.
type qcmd struct {
	kind     qcmdKind
	node     uint64
	ts       int64
	record   []byte           // enqueue (aliases the entry)
	msg      *message.Message // enqueue to encode: written as its record, with no copy in between
	key      uint64           // checkout, cancel, get
	prefetch uint32
	priority int32
	flags    uint8
	ids      []uint64     // cancel: kept ids
	keep     []qref       // cancel-at: kept deliveries (key unused)
	refs     []qref       // settle, return, discard (and -at)
	target   uint64       // node-down, node-up, node-restarted
	epoch    uint32       // node-restarted
	conf     quorumConfig // config
}

// Checkout, get and return-at flags.
const (
	qfExclusive uint8 = 1 // checkout
	qfNoAck     uint8 = 1 // get
	qfFailed    uint8 = 1 // return-at: a failed delivery (basic.reject), counted against x-delivery-limit
)

var errQCmd = errors.New("broker: corrupt quorum queue command")

func appendQHeader(buf []byte, k qcmdKind, node uint64, ts int64) []byte {
	buf = append(buf, byte(k))
	buf = binary.BigEndian.AppendUint64(buf, node)
	return binary.BigEndian.AppendUint64(buf, uint64(ts))
}

// sizeHint is about the size of c's entry, so encoding allocates once.
func (c *qcmd) sizeHint() int {
	n := qcmdHeader + 20*len(c.refs) + 8*len(c.ids) + 12*len(c.keep) + 32
	if c.msg != nil {
		n += 64 + len(c.msg.Exchange) + len(c.msg.RoutingKey) + len(c.msg.WireProps) + len(c.msg.Body)
		if c.msg.WireProps == nil {
			n += 128
		}
	}
	return n + len(c.record)
}

// encode appends c's entry to buf.
func (c *qcmd) encode(buf []byte) []byte {
	buf = appendQHeader(buf, c.kind, c.node, c.ts)
	be := binary.BigEndian
	switch c.kind {
	case qcEnqueue:
		if c.msg != nil {
			buf = message.AppendMessage(buf, c.msg)
		} else {
			buf = append(buf, c.record...)
		}
	case qcCheckout:
		buf = be.AppendUint64(buf, c.key)
		buf = be.AppendUint32(buf, c.prefetch)
		buf = be.AppendUint32(buf, uint32(c.priority))
		buf = append(buf, c.flags)
	case qcCancel:
		buf = be.AppendUint64(buf, c.key)
		buf = be.AppendUint32(buf, uint32(len(c.ids)))
		for _, id := range c.ids {
			buf = be.AppendUint64(buf, id)
		}
	case qcCancelAt:
		buf = be.AppendUint64(buf, c.key)
		buf = be.AppendUint32(buf, uint32(len(c.keep)))
		for _, r := range c.keep {
			buf = be.AppendUint64(buf, r.id)
			buf = be.AppendUint32(buf, r.acquired)
		}
	case qcSettle, qcReturn, qcDiscard:
		buf = be.AppendUint32(buf, uint32(len(c.refs)))
		for _, r := range c.refs {
			buf = be.AppendUint64(buf, r.key)
			buf = be.AppendUint64(buf, r.id)
		}
	case qcSettleAt, qcReturnAt, qcDiscardAt:
		if c.kind == qcReturnAt {
			buf = append(buf, c.flags)
		}
		buf = be.AppendUint32(buf, uint32(len(c.refs)))
		for _, r := range c.refs {
			buf = be.AppendUint64(buf, r.key)
			buf = be.AppendUint64(buf, r.id)
			buf = be.AppendUint32(buf, r.acquired)
		}
	case qcGet:
		buf = be.AppendUint64(buf, c.key)
		buf = append(buf, c.flags)
	case qcNodeDown, qcNodeUp:
		buf = be.AppendUint64(buf, c.target)
	case qcNodeRestarted:
		buf = be.AppendUint64(buf, c.target)
		buf = be.AppendUint32(buf, c.epoch)
	case qcConfig:
		buf = appendQConfig(buf, &c.conf)
	}
	return buf
}

// countedItems reads the list that ends a body: after skip bytes, a count
// uint32, then that many items of size bytes, which must be the rest of b
// exactly (checked before anything is allocated for the count).
func countedItems(b []byte, skip, size int, what string) (n int, items []byte, err error) {
	if len(b) < skip+4 {
		return 0, nil, fmt.Errorf("%w: short %s", errQCmd, what)
	}
	count := binary.BigEndian.Uint32(b[skip:])
	items = b[skip+4:]
	if uint64(count)*uint64(size) != uint64(len(items)) {
		return 0, nil, fmt.Errorf("%w: %s of %d items of %d bytes in %d bytes", errQCmd, what, count, size, len(items))
	}
	return int(count), items, nil
}

// decodeQCmd decodes an entry. The record of an enqueue aliases b.
func decodeQCmd(b []byte) (qcmd, error) {
	var c qcmd
	if len(b) < qcmdHeader {
		return c, fmt.Errorf("%w: short header", errQCmd)
	}
	be := binary.BigEndian
	c.kind = qcmdKind(b[0])
	c.node = be.Uint64(b[1:])
	c.ts = int64(be.Uint64(b[9:]))
	b = b[qcmdHeader:]
	need := func(n int) error {
		if len(b) != n {
			return fmt.Errorf("%w: kind %d: %d body bytes, want %d", errQCmd, c.kind, len(b), n)
		}
		return nil
	}
	switch c.kind {
	case qcEnqueue:
		if len(b) == 0 {
			return c, fmt.Errorf("%w: empty enqueue", errQCmd)
		}
		c.record = b
	case qcCheckout:
		if err := need(17); err != nil {
			return c, err
		}
		c.key, c.prefetch, c.priority, c.flags = be.Uint64(b), be.Uint32(b[8:]), int32(be.Uint32(b[12:])), b[16]
	case qcCancel:
		n, items, err := countedItems(b, 8, 8, "cancel")
		if err != nil {
			return c, err
		}
		c.key = be.Uint64(b)
		c.ids = make([]uint64, n)
		for i := range c.ids {
			c.ids[i] = be.Uint64(items[8*i:])
		}
	case qcCancelAt:
		n, items, err := countedItems(b, 8, 12, "cancel")
		if err != nil {
			return c, err
		}
		c.key = be.Uint64(b)
		c.keep = make([]qref, n)
		for i := range c.keep {
			c.keep[i] = qref{id: be.Uint64(items[12*i:]), acquired: be.Uint32(items[12*i+8:])}
		}
	case qcSettle, qcReturn, qcDiscard:
		n, items, err := countedItems(b, 0, 16, "settlement")
		if err != nil {
			return c, err
		}
		c.refs = make([]qref, n)
		for i := range c.refs {
			c.refs[i] = qref{key: be.Uint64(items[16*i:]), id: be.Uint64(items[16*i+8:])}
		}
	case qcSettleAt, qcReturnAt, qcDiscardAt:
		if c.kind == qcReturnAt {
			if len(b) < 1 {
				return c, fmt.Errorf("%w: short return", errQCmd)
			}
			c.flags, b = b[0], b[1:]
		}
		n, items, err := countedItems(b, 0, 20, "settlement")
		if err != nil {
			return c, err
		}
		c.refs = make([]qref, n)
		for i := range c.refs {
			c.refs[i] = qref{key: be.Uint64(items[20*i:]), id: be.Uint64(items[20*i+8:]), acquired: be.Uint32(items[20*i+16:])}
		}
	case qcGet:
		if err := need(9); err != nil {
			return c, err
		}
		c.key, c.flags = be.Uint64(b), b[8]
	case qcPurge, qcTick, qcTouch:
		if err := need(0); err != nil {
			return c, err
		}
	case qcNodeDown, qcNodeUp:
		if err := need(8); err != nil {
			return c, err
		}
		c.target = be.Uint64(b)
	case qcNodeRestarted:
		if err := need(12); err != nil {
			return c, err
		}
		c.target, c.epoch = be.Uint64(b), be.Uint32(b[8:])
	case qcConfig:
		var err error
		if c.conf, err = decodeQConfig(b); err != nil {
			return c, err
		}
	default:
		return c, fmt.Errorf("%w: unknown kind %d", errQCmd, c.kind)
	}
	return c, nil
}
