package broker

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Policies on a quorum queue. The settings its machine reads (message TTL,
// length limits, overflow, delivery limit, whether it dead-letters) must
// be the same on every replica at every entry, so a policy change does
// not reach the machine when the metadata group applies it — that happens
// on each node at a different point of the queue's own log — but as a
// config entry in the queue's log, proposed by its leader: every replica
// applies it at the same index, and a snapshot carries the settings
// (quorum_snapshot.go). The leader proposes one whenever the settings the
// policies give differ from its machine's: when a policy changes
// (policyChanged) and when it becomes the leader (a change its
// predecessor did not get to propose). Until the entry applies, the queue
// keeps its previous settings.
//
// The dead-letter exchange and routing key, and x-expires, are not the
// machine's: the leader reads them from the queue's effective arguments
// when it dead-letters or counts down (Queue.cur).

// quorumConfigEncoded is the size of an encoded config:
//
//	flags uint8 (1: has TTL, 2: dead-letters) | ttl int64 (ns) | max-length int64 |
//	max-length-bytes int64 | overflow uint8 (0: drop-head, 1: reject-publish) | delivery-limit int64
const quorumConfigEncoded = 1 + 8 + 8 + 8 + 1 + 8

func appendQConfig(buf []byte, c *quorumConfig) []byte {
	be := binary.BigEndian
	var flags, overflow byte
	if c.hasTTL {
		flags |= 1
	}
	if c.hasDLX {
		flags |= 2
	}
	if c.overflow == RejectPublish {
		overflow = 1
	}
	buf = append(buf, flags)
	buf = be.AppendUint64(buf, uint64(c.ttl))
	buf = be.AppendUint64(buf, uint64(c.maxLength))
	buf = be.AppendUint64(buf, uint64(c.maxBytes))
	buf = append(buf, overflow)
	return be.AppendUint64(buf, uint64(c.deliveryLimit))
}

func decodeQConfig(b []byte) (quorumConfig, error) {
	var c quorumConfig
	if len(b) != quorumConfigEncoded || b[0]&^3 != 0 || b[25] > 1 {
		return c, fmt.Errorf("%w: config", errQCmd)
	}
	be := binary.BigEndian
	c.hasTTL, c.hasDLX = b[0]&1 != 0, b[0]&2 != 0
	c.ttl = time.Duration(be.Uint64(b[1:]))
	c.maxLength, c.maxBytes = int64(be.Uint64(b[9:])), int64(be.Uint64(b[17:]))
	c.overflow = DropHead
	if b[25] == 1 {
		c.overflow = RejectPublish
	}
	c.deliveryLimit = int64(be.Uint64(b[26:]))
	if c.ttl < 0 || c.maxLength < -1 || c.maxBytes < -1 || c.deliveryLimit < -1 {
		return c, fmt.Errorf("%w: config values", errQCmd)
	}
	return c, nil
}

// setConfig applies a config entry: the new settings apply from this
// entry on. Under drop-head, a lower limit drops (or dead-letters) ready
// messages from the head at once. A new message TTL applies to the
// messages already in the queue too, counted from their publication: a
// replica restored from a snapshot computes every expiry from the
// settings the snapshot holds, so a live one must agree with it.
// single-active-consumer is the declaration's and stays.
func (m *quorumMachine) setConfig(c quorumConfig) {
	c.singleActive = m.cfg.singleActive
	ttlChanged := c.ttl != m.cfg.ttl || c.hasTTL != m.cfg.hasTTL
	m.cfg = c
	if ttlChanged {
		m.msgs.each(func(q *qmsg) { q.expires = m.expiry(q) })
	}
	if c.overflow == DropHead {
		for m.ready.len() > 0 && ((c.maxLength >= 0 && int64(m.ready.len()) > c.maxLength) ||
			(c.maxBytes >= 0 && m.readyBytes > c.maxBytes)) {
			m.drop(m.popReady(), "maxlen")
		}
	}
}

// policyChanged is called on every node when the queue's effective
// arguments change; the leader proposes the settings they give.
func (b *quorumBackend) policyChanged() func() {
	return func() { b.soon(func() { b.syncConfig(quorumRetryN) }) }
}

// syncConfig proposes a config entry if this node leads and its machine's
// settings are not what the queue's policies now give; a failed proposal
// is tried again, from the settings of that moment, at most tries times.
func (b *quorumBackend) syncConfig(tries int) {
	want := quorumConfigOf(b.cur())
	b.mu.Lock()
	want.singleActive = b.m.cfg.singleActive
	skip := !b.leader || b.rlog == nil || b.deleted || b.m.cfg == want
	b.mu.Unlock()
	if skip {
		return
	}
	b.propose(&qcmd{kind: qcConfig, conf: want}, func(_ any, err error) {
		if err != nil && tries > 1 && !b.isDeleted() {
			b.vhost.broker.cfg.Clock.AfterFunc(quorumRetry, func() { b.syncConfig(tries - 1) })
		}
	})
}
