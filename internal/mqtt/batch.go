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
// later, from the queue, finds the batch closed and goes the usual way.
type writeBatch struct {
	mu   sync.Mutex
	open bool
	outs []*outbox.Outbox
}

// maxBatchOutboxes bounds the outboxes one batch writes itself: a message
// to many subscribers has the rest written by their writers, in parallel.
const maxBatchOutboxes = 16

// begin opens the batch (the reader's goroutine).
func (b *writeBatch) begin() {
	b.mu.Lock()
	b.open = true
	b.mu.Unlock()
}

// appendTo appends a delivery to o, deferred to the batch's flush while
// the batch is open and has room, else as AppendDelivery does. Appending
// under the batch's lock means a flush that closed the batch has seen
// every deferred append.
func (b *writeBatch) appendTo(o *outbox.Outbox, add func([]byte) []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
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
