package mqtt

import (
	"sync"

	"github.com/tern-broker/tern/internal/outbox"
)

// Writing deliveries from the publisher's goroutine (issue 16: CPU per
// message). A PUBLISH routed to a subscriber appends the PUBLISH it makes
// to the subscriber's outbox; an idle outbox then started a writer
// goroutine for it: a goroutine, a scheduler hand-off and usually a
// sleeping thread woken, per delivery when publishers each send one
// message per wake-up (a fan-in of devices). Instead, the messages a
// reader publishes carry its writeBatch (message.Message.Batch): a
// delivery made while the batch is open appends without starting the
// writer and records the outbox, and the reader writes each such outbox
// itself once its read's packets are handled (or before anything that may
// block: a durable retained set, an alarm, a rate limit), with the same
// non-blocking write its own acknowledgements get (outbox.Flush). What
// the socket does not take goes to the writer as before. A delivery made
// later, from the queue, goes the usual way: a message carries the period
// of the batch it was published in (batchPeriod), not the batch, and only
// that period defers its deliveries.
type writeBatch struct {
	mu   sync.Mutex
	open bool
	outs []*outbox.Outbox
	// cur is the period the messages published now carry; used (the
	// owner's: the reader opening the batch) says a message took it, so
	// the next begin starts another. Without periods a message queued for
	// a slow subscriber and delivered later by another goroutine (a queue
	// dispatch) found the event loop's burst open whenever the poller was
	// between epoll_wait and its flush, and waited for the poller's whole
	// batch of events (review10 F5). A period costs an allocation per
	// opening that published something, not per message.
	cur  *batchPeriod
	used bool
}

// batchPeriod is one opening of a writeBatch: a message's Batch.
type batchPeriod struct{ b *writeBatch }

// maxBatchOutboxes bounds the outboxes one batch writes itself: a message
// to many subscribers has the rest written by their writers, in parallel.
const maxBatchOutboxes = 16

// begin opens the batch (the reader's goroutine).
func (b *writeBatch) begin() {
	b.mu.Lock()
	b.open = true
	if b.cur == nil || b.used {
		b.cur, b.used = &batchPeriod{b: b}, false
	}
	b.mu.Unlock()
}

// period is what a message published now carries (the reader's
// goroutine, the batch open): its deliveries are deferred until the batch
// closes, and no later.
func (b *writeBatch) period() *batchPeriod {
	b.used = true
	return b.cur
}

// appendTo appends a delivery to o, deferred to the batch's flush while
// the period is the batch's open one and the batch has room, else as
// AppendDelivery does. Appending under the batch's lock means a flush
// that closed the batch has seen every deferred append.
func (p *batchPeriod) appendTo(o *outbox.Outbox, add func([]byte) []byte) bool {
	b := p.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open || b.cur != p {
		return o.AppendDelivery(add)
	}
	known := false
	for _, x := range b.outs {
		if x == o {
			known = true
			break
		}
	}
	if !known && len(b.outs) >= maxBatchOutboxes {
		return o.AppendDelivery(add)
	}
	if !o.AppendDeliveryDeferred(add) {
		return false
	}
	if !known {
		b.outs = append(b.outs, o)
	}
	return true
}

// flush closes the batch and writes the outboxes it deferred; with
// reopen the batch opens again (the read goes on).
func (b *writeBatch) flush(reopen bool) {
	var outs [maxBatchOutboxes]*outbox.Outbox
	b.mu.Lock()
	n := copy(outs[:], b.outs)
	clear(b.outs)
	b.outs = b.outs[:0]
	b.open = reopen
	b.mu.Unlock()
	for _, o := range outs[:n] {
		o.Flush()
	}
}
