package broker

// A quorum queue's settlements (ack, requeue, reject) from this node's
// consumers: the deliveries are forgotten locally and counted in flight
// at once, and proposed to the group — the acks of one moment as one
// proposal.

// refsLocked turns deliveries into settlements, forgets them locally and
// counts them in flight.
func (b *quorumBackend) refsLocked(ds []Delivery) []qref {
	refs := make([]qref, len(ds))
	var lc *qlocal
	for i, d := range ds {
		refs[i] = qref{key: d.qkey, id: d.Seq, acquired: d.qacq}
		if lc == nil || lc.key != d.qkey { // the deliveries of one call are mostly one consumer's
			if lc = b.local[d.qkey]; lc == nil {
				lc = b.closing[d.qkey]
			}
		}
		if lc != nil {
			delete(lc.held, d.Seq)
		}
	}
	b.inflightLocked(refs)
	return refs
}

// ack settles the deliveries; the credit they free is used once the
// settlement applies. Messages this node was given and its consumers
// refused for want of credit are offered again now.
//
// The acks of one moment share one proposal: each call adds its
// settlements to acks, and the first of them asks the outbox to propose
// what has gathered by the time it runs (flushAcks). A client acking each
// message one by one sends acks in bursts the connection reads together,
// and each proposal costs on every replica (an entry's header, its apply,
// the proposer's completion) whatever it settles: one proposal per ack
// was a second Raft entry per message. The settlements are counted in
// flight from here, so a cancel still waits for them (settlementDone).
func (b *quorumBackend) ack(ds []Delivery) {
	b.mu.Lock()
	b.acks = append(b.acks, b.refsLocked(ds)...)
	b.acks = append(b.acks, b.deliverLocked()...)
	start := !b.acksQueued && len(b.acks) > 0
	b.acksQueued = b.acksQueued || start
	b.mu.Unlock()
	b.vhost.broker.stats.acked.Add(uint64(len(ds)))
	if start {
		b.soon(b.flushAcks)
	}
}

// flushAcks proposes the settlements ack gathered, as one entry.
func (b *quorumBackend) flushAcks() {
	b.mu.Lock()
	refs := b.acks
	b.acks, b.acksQueued = nil, false
	b.mu.Unlock()
	b.proposeSettlement(qcSettleAt, 0, refs)
}

// requeue returns the deliveries to their original place, redelivered. A
// failed one (basic.reject with requeue) counts a delivery, and past
// x-delivery-limit goes to the dead-letter exchange instead; others
// (basic.nack with requeue, a closed channel) do not count, as in
// RabbitMQ 4.3.
func (b *quorumBackend) requeue(ds []Delivery, failed bool) {
	b.mu.Lock()
	refs := b.refsLocked(ds)
	b.mu.Unlock()
	var flags uint8
	if failed {
		flags = qfFailed
	}
	b.proposeSettlement(qcReturnAt, flags, refs)
}

// reject dead-letters the deliveries (reason rejected) or drops them.
func (b *quorumBackend) reject(ds []Delivery) {
	b.mu.Lock()
	refs := b.refsLocked(ds)
	b.mu.Unlock()
	b.proposeSettlement(qcDiscardAt, 0, refs)
}
