package broker

// MessageStats are a queue's running message totals since it was created
// (or since this node started, for a recovered durable queue), for the
// management API's message_stats and its rates. A classic queue counts
// them under the lock it already holds for the operation, so they cost
// no atomic and no extra lock on the message path; other queue types do
// not count them yet and report zeros (docs/http-api.md).
type MessageStats struct {
	// Published: messages the queue took (enqueued or handed straight
	// to a consumer).
	Published uint64
	// Delivered: deliveries to consumers and basic.get, redeliveries
	// included; Redelivered: those with the redelivered flag.
	Delivered, Redelivered uint64
	// Acked: deliveries acknowledged.
	Acked uint64
}

// MessageStats returns the queue's totals (zeros for stream and quorum
// queues).
func (q *Queue) MessageStats() MessageStats {
	c, ok := q.backend.(*classicBackend)
	if !ok {
		return MessageStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgStats
}

// Status returns a consistent snapshot of one classic queue's counts and
// totals, taken under one acquisition of its lock; the other types take
// their counts and zero totals.
func (q *Queue) Status() (ready, unacked, consumers int, readyBytes int64, st MessageStats) {
	c, ok := q.backend.(*classicBackend)
	if !ok {
		r, u, n := q.Counts()
		return r, u, n, q.ReadyBytes(), MessageStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropRefusedLocked()
	return c.readyCount, c.unacked, len(c.consumers), c.readySize, c.msgStats
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
