package broker

import "sync/atomic"

// MessageStats are a queue's running message totals since it was created
// (or since this node started, for a recovered durable queue), for the
// management API's message_stats and its rates. A classic queue counts
// them under the lock it already holds for the operation, so they cost no
// atomic and no extra lock on its message path; quorum queues and streams
// count them with one atomic add per message, publish and batch of acks
// (msgCounters) — beside a Raft proposal or a log append, nothing.
type MessageStats struct {
	// Published: messages the queue took (enqueued or handed straight
	// to a consumer; for a quorum queue, proposed to its log).
	Published uint64
	// Delivered: deliveries to consumers and basic.get, redeliveries
	// included; Redelivered: those with the redelivered flag (never, for
	// a stream).
	Delivered, Redelivered uint64
	// Acked: deliveries acknowledged (a stream's consumers' acks, which
	// store named consumers' offsets, included).
	Acked uint64
}

// msgCounters are a quorum queue's or stream's MessageStats.
type msgCounters struct {
	published, delivered, redelivered, acked atomic.Uint64
}

func (q *Queue) countDelivered(redelivered bool) {
	q.counters.delivered.Add(1)
	if redelivered {
		q.counters.redelivered.Add(1)
	}
}

func (c *msgCounters) load() MessageStats {
	if c == nil {
		return MessageStats{} // a classic queue's, whose backend counts (a cluster's remote one)
	}
	return MessageStats{Published: c.published.Load(), Delivered: c.delivered.Load(),
		Redelivered: c.redelivered.Load(), Acked: c.acked.Load()}
}

// MessageStats returns the queue's totals.
func (q *Queue) MessageStats() MessageStats {
	c, ok := q.backend.(*classicBackend)
	if !ok {
		return q.counters.load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statsLocked()
}

// Status returns a consistent snapshot of one classic queue's counts and
// totals, taken under one acquisition of its lock; the other types take
// their counts and totals one after the other.
func (q *Queue) Status() (ready, unacked, consumers int, readyBytes int64, st MessageStats) {
	c, ok := q.backend.(*classicBackend)
	if !ok {
		r, u, n := q.Counts()
		return r, u, n, q.ReadyBytes(), q.counters.load()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropRefusedLocked()
	return c.readyCount, c.unacked, len(c.consumers), c.readySize, c.statsLocked()
}

// LookupQueue returns the named queue whoever owns it, or nil: the
// management API shows and deletes exclusive queues too.
func (v *VHost) LookupQueue(name string) *Queue {
	q := v.queue(name)
	if q == nil || q.cfg.Internal {
		return nil
	}
	return q
}

// Counters returns the broker's running totals and alarm flags without
// visiting the queues (Stats does, for its gauges and PerQueue): what a
// once-a-second rate sampler needs.
func (b *Broker) Counters() Stats {
	return Stats{
		Published:         b.stats.published.Load(),
		Unroutable:        b.stats.unroutable.Load(),
		Delivered:         b.stats.delivered.Load(),
		Redelivered:       b.stats.redelivered.Load(),
		Acked:             b.stats.acked.Load(),
		DeadLettered:      b.stats.deadLettered.Load(),
		DeadLetterDropped: b.stats.deadLetterDropped.Load(),
		QueuedBytes:       b.queuedBytes.Load(),
		MemoryAlarm:       b.memoryAlarm.Active(),
		DiskAlarm:         b.diskAlarm.Active(),
	}
}
