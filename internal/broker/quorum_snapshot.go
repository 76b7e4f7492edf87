package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/tern-broker/tern/internal/message"
)

// A quorum machine's snapshot is its whole state, written in one
// deterministic order, so replicas in the same state write the same bytes
// (the tests compare them):
//
//	version uint8 (3) | config (quorum_policy.go) | now int64 | nextID uint64 | nextOrder uint64 | rr uint64 | uses uint64 |
//	active order uint64 (0: none) |
//	consumers uint32, each: node uint64 | key uint64 | order uint64 |
//	  prefetch uint32 | priority int32 | status uint8 | exclusive uint8 |
//	messages uint32, by id, each: id uint64 | count uint32 | acquired uint32 | delivered uint8 |
//	  owner order uint64 (0: ready) | record length uint32 | message record
//
// Consumers are listed in registration order; the ready list is the
// messages without an owner, by id. Expiry times are recomputed from the
// records and the queue's arguments. Version 1 (still read) had no
// acquired counts (restored as 0: settlements of those deliveries match
// any) and a last-use time where uses is (restored as one use if set);
// versions 1 and 2 (still read) had no config: the settings were the
// declaration's, as they are until a policy's config entry applies.
const quorumSnapshotVersion = 3

var errQSnapshot = errors.New("broker: corrupt quorum queue snapshot")

// Snapshot encodes the machine's state.
func (m *quorumMachine) Snapshot() ([]byte, error) { return m.appendSnapshot(nil), nil }

// appendSnapshot appends the machine's state, encoded, to dst.
func (m *quorumMachine) appendSnapshot(dst []byte) []byte {
	be := binary.BigEndian
	// Sized up front: a snapshot holds every message's record, megabytes
	// with a backlog, and runs on the group's goroutine; growing the
	// buffer by appends copied it about twice over (26.5 MB allocated
	// for a 4.3 MB snapshot, BenchmarkQuorumSnapshot).
	size := 128 + 34*len(m.consumers)
	msgs := m.msgs.sorted()
	for _, q := range msgs {
		size += 29 + 4 + len(q.rec)
	}
	buf := append(slices.Grow(dst, size), quorumSnapshotVersion)
	buf = appendQConfig(buf, &m.cfg)
	buf = be.AppendUint64(buf, uint64(m.now))
	buf = be.AppendUint64(buf, m.nextID)
	buf = be.AppendUint64(buf, m.nextOrder)
	buf = be.AppendUint64(buf, m.rr)
	buf = be.AppendUint64(buf, m.uses)
	var active uint64
	if m.active != nil {
		active = m.active.order
	}
	buf = be.AppendUint64(buf, active)
	buf = be.AppendUint32(buf, uint32(len(m.consumers)))
	for _, q := range m.consumers {
		buf = be.AppendUint64(buf, q.node)
		buf = be.AppendUint64(buf, q.key)
		buf = be.AppendUint64(buf, q.order)
		buf = be.AppendUint32(buf, q.prefetch)
		buf = be.AppendUint32(buf, uint32(q.priority))
		buf = append(buf, byte(q.status), boolByte(q.exclusive))
	}
	buf = be.AppendUint32(buf, uint32(len(msgs)))
	for _, q := range msgs {
		buf = be.AppendUint64(buf, q.id)
		buf = be.AppendUint32(buf, q.count)
		buf = be.AppendUint32(buf, q.acquired)
		buf = append(buf, boolByte(q.delivered))
		var owner uint64
		if q.owner != nil {
			owner = q.owner.order
		}
		buf = be.AppendUint64(buf, owner)
		buf = be.AppendUint32(buf, uint32(len(q.rec)))
		buf = append(buf, q.rec...)
		if !q.own {
			// A record aliases its Raft entry, a batch of up to 256 KiB of
			// proposals: one message left behind (requeued, held by a
			// slow consumer) kept the whole entry alive while the memory
			// alarm counted its body (review10 Q1). Until this snapshot
			// the Raft log holds the entry anyway; the compaction after
			// it would free it, so a message still here takes a copy of
			// its own — once, and only messages that outlive a snapshot.
			// Copying every record at enqueue instead (bounded, but on
			// every replica for every message) measured 1.5-2.3x the
			// machine's cost per 1 KiB message (BenchmarkQuorumMachine,
			// A/B on a loaded box: 3.1-5.5 µs vs 4.7-12.9 µs, 1,152 more
			// bytes allocated each); counting the pinned entry instead
			// needs a reference count per entry.
			q.rec, q.own = bytes.Clone(q.rec), true
		}
	}
	return buf
}

// recordSlack is about what a message's record (message.AppendMessage)
// takes beyond its size (Message.Size), as StateSize estimates it.
const recordSlack = 64

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Restore replaces the machine's state with a snapshot's. On an error the
// state is unchanged.
func (m *quorumMachine) Restore(data []byte) error {
	n, err := decodeQSnapshot(m.cfg, data)
	if err != nil {
		return err
	}
	if m.bodyOut != nil {
		m.msgs.each(func(q *qmsg) { m.bodyOut(q.size) })
	}
	if m.bodyIn != nil {
		n.msgs.each(func(q *qmsg) { m.bodyIn(q.size) })
	}
	m.cfg = n.cfg
	m.now, m.nextID, m.nextOrder, m.rr, m.uses = n.now, n.nextID, n.nextOrder, n.rr, n.uses
	m.msgs, m.ready, m.readyBytes, m.msgBytes, m.unacked = n.msgs, n.ready, n.readyBytes, n.msgBytes, n.unacked
	m.consumers, m.active = n.consumers, n.active
	return nil
}

// snapReader reads a snapshot, remembering the first failure.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) take(n int) []byte {
	if r.err != nil || len(r.b) < n {
		if r.err == nil {
			r.err = fmt.Errorf("%w: truncated", errQSnapshot)
		}
		return make([]byte, min(n, 8))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *snapReader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *snapReader) u8() uint8   { return r.take(1)[0] }

func decodeQSnapshot(cfg quorumConfig, data []byte) (*quorumMachine, error) {
	r := &snapReader{b: data}
	v := r.u8()
	if r.err == nil && (v < 1 || v > quorumSnapshotVersion) {
		return nil, fmt.Errorf("%w: version %d", errQSnapshot, v)
	}
	if v >= 3 {
		c, err := decodeQConfig(r.take(quorumConfigEncoded))
		if r.err != nil || err != nil {
			return nil, fmt.Errorf("%w: config", errQSnapshot)
		}
		c.singleActive = cfg.singleActive // the declaration's
		cfg = c
	}
	m := newQuorumMachine(cfg)
	m.now, m.nextID, m.nextOrder, m.rr, m.uses = int64(r.u64()), r.u64(), r.u64(), r.u64(), r.u64()
	if v == 1 && m.uses != 0 {
		m.uses = 1 // a last-use time
	}
	active := r.u64()
	nc := r.u32()
	if r.err != nil || uint64(nc)*34 > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: consumers", errQSnapshot)
	}
	byOrder := map[uint64]*qconsumer{}
	for range nc {
		q := &qconsumer{node: r.u64(), key: r.u64(), order: r.u64(), prefetch: r.u32(), priority: int32(r.u32()),
			status: qstatus(r.u8()), exclusive: r.u8() != 0}
		if q.order == 0 || q.order >= m.nextOrder || byOrder[q.order] != nil || q.status < qsUp || q.status > qsGet ||
			(len(m.consumers) > 0 && m.consumers[len(m.consumers)-1].order >= q.order) {
			return nil, fmt.Errorf("%w: consumer", errQSnapshot)
		}
		byOrder[q.order] = q
		m.consumers = append(m.consumers, q)
	}
	if active != 0 {
		if m.active = byOrder[active]; m.active == nil {
			return nil, fmt.Errorf("%w: active consumer", errQSnapshot)
		}
	}
	nm := r.u32()
	if r.err != nil || uint64(nm)*25 > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: messages", errQSnapshot)
	}
	var last uint64
	for i := range nm {
		id, count := r.u64(), r.u32()
		var acquired uint32
		if v != 1 {
			acquired = r.u32()
		}
		delivered, owner := r.u8() != 0, r.u64()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(r.b)) {
			return nil, fmt.Errorf("%w: message record", errQSnapshot)
		}
		// A copy: the machine keeps each record, and one message left
		// would otherwise keep the whole snapshot in memory.
		rec := bytes.Clone(r.take(int(size)))
		if (i > 0 && id <= last) || id >= m.nextID {
			return nil, fmt.Errorf("%w: message id %d", errQSnapshot, id)
		}
		last = id
		// Only the framing: the record was accepted when it was enqueued,
		// perhaps by a version that checked no more (newMsg).
		info, err := message.PeekRecordFraming(rec)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", errQSnapshot, id, err)
		}
		q := m.msgOf(rec, info)
		q.own = true
		q.id, q.count, q.acquired, q.delivered = id, count, acquired, delivered
		m.msgs.add(q)
		m.msgBytes += q.size
		if owner == 0 {
			m.ready.pushBack(q)
			m.readyBytes += q.size
			continue
		}
		c := byOrder[owner]
		if c == nil {
			return nil, fmt.Errorf("%w: message %d owner", errQSnapshot, id)
		}
		c.hold(q)
		m.unacked++
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", errQSnapshot, len(r.b))
	}
	return m, r.err
}
