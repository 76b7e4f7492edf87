package amqp

import (
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// confirms tracks a confirm-mode channel's publishes until they can be
// acked or nacked. Publishes that reached only memory are ready at once;
// those logged by durable queues wait for the store's group commit, which
// calls Durable from its own goroutine. Confirms go out in publish order:
// a run of ready acks as one basic.ack with multiple, a nack on its own.
type confirms struct {
	mu     sync.Mutex
	fifo   []pendingConfirm // by seq; entries before head are sent
	head   int
	sentTo uint64 // highest seq confirmed to the client
	closed bool
}

type pendingConfirm struct {
	seq     uint64
	waiting int  // durable appends not yet reported; may dip below 0 until routed
	routed  bool // the publish has finished routing (waiting is final)
	nack    bool
}

func (p *pendingConfirm) ready() bool { return p.routed && p.waiting <= 0 }

// begin registers seq before it is routed, so a fast commit cannot report
// on an unknown publish.
func (c *confirms) begin(seq uint64) {
	c.mu.Lock()
	c.fifo = append(c.fifo, pendingConfirm{seq: seq})
	c.mu.Unlock()
}

// routed records how many durable appends seq waits for and whether a
// queue refused it.
func (c *confirms) routed(seq uint64, pending int, rejected bool) {
	c.mu.Lock()
	if p := c.findLocked(seq); p != nil {
		p.waiting += pending
		p.routed = true
		p.nack = p.nack || rejected
	}
	c.mu.Unlock()
}

func (c *confirms) findLocked(seq uint64) *pendingConfirm {
	lo, hi := c.head, len(c.fifo)
	for lo < hi {
		mid := (lo + hi) / 2
		if c.fifo[mid].seq < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(c.fifo) && c.fifo[lo].seq == seq {
		return &c.fifo[lo]
	}
	return nil
}

// Durable implements message.Completion for the channel's publishes. It only
// records: DurableBatchEnd, after the whole group commit, sends the run
// that became ready as one multiple basic.ack.
func (ch *channel) Durable(seq uint64, err error) {
	c := &ch.cf
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.findLocked(seq)
	if p == nil {
		return
	}
	p.waiting--
	if err != nil {
		p.nack = true
		// Debug: the store logs once when writes start failing, not per nack.
		ch.conn.log.Debug("persisting a message failed; nacking it", "channel", ch.id, "err", err)
	}
}

// DurableBatchEnd implements message.BatchCompletion: the store's group
// commit has reported every publish it covered.
func (ch *channel) DurableBatchEnd() {
	c := &ch.cf
	c.mu.Lock()
	ch.sendReadyLocked()
	c.mu.Unlock()
}

// flushConfirms sends whatever is ready; the reader calls it when it runs
// out of buffered input, so a burst of publishes gets one multiple-ack.
func (ch *channel) flushConfirms() {
	ch.confirmQueued = false
	c := &ch.cf
	c.mu.Lock()
	ch.sendReadyLocked()
	c.mu.Unlock()
}

// sendReadyLocked pops the ready head of the FIFO and writes its confirms.
func (ch *channel) sendReadyLocked() {
	c := &ch.cf
	if c.closed {
		return
	}
	var ackTo uint64
	for c.head < len(c.fifo) && c.fifo[c.head].ready() {
		p := c.fifo[c.head]
		c.head++
		if !p.nack {
			ackTo = p.seq
			continue
		}
		if ackTo > c.sentTo {
			ch.sendConfirm(false, ackTo, ackTo-c.sentTo > 1)
			c.sentTo = ackTo
		}
		ch.sendConfirm(true, p.seq, false)
		c.sentTo = p.seq
	}
	if ackTo > c.sentTo {
		ch.sendConfirm(false, ackTo, ackTo-c.sentTo > 1)
		c.sentTo = ackTo
	}
	if c.head == len(c.fifo) {
		c.fifo, c.head = c.fifo[:0], 0
	} else if c.head > 1024 && c.head > len(c.fifo)/2 {
		n := copy(c.fifo, c.fifo[c.head:])
		c.fifo, c.head = c.fifo[:n], 0
	}
}

func (ch *channel) sendConfirm(nack bool, tag uint64, multiple bool) {
	ch.conn.out.Append(func(buf []byte) []byte { return amqp091.AppendConfirm(buf, ch.id, nack, tag, multiple) })
	if nack {
		ch.conn.srv.stats.nacked.Add(1)
	} else {
		ch.conn.srv.stats.confirmed.Add(1)
		ch.counters.confirm.Add(1)
	}
}

// txCommitWaiter sends tx.commit-ok once every durable append of the
// committed publishes is on disk (RabbitMQ's guarantee for transactions).
type txCommitWaiter struct {
	ch      *channel
	pending atomic.Int64 // starts at txRouting, released after routing
	failed  atomic.Bool  // a message of the transaction could not be stored
}

// Durable implements message.Completion.
func (w *txCommitWaiter) Durable(_ uint64, err error) {
	if err != nil && !w.failed.Swap(true) {
		w.ch.conn.log.Error("persisting a transactional message failed; closing the connection instead of committing", "channel", w.ch.id, "err", err)
	}
	w.release(1)
}

// release answers the commit once every durable append has been decided:
// commit-ok only when all of them are on disk. A failed one must never be
// reported as committed; the client gets 541 and, as with a lost
// connection, does not know the outcome and publishes again.
//
// pending holds txRouting while the commit's messages are being routed, so
// a message that becomes durable before its queue's count was added (the
// store's committer runs meanwhile) cannot bring it to 0 early: the answer
// goes out exactly once, when routing is over and every append is decided.
func (w *txCommitWaiter) release(n int64) {
	if w.pending.Add(-n) != 0 {
		return
	}
	if w.failed.Load() {
		w.ch.conn.closeFromOutside(amqp091.InternalError, internalText)
		return
	}
	w.ch.send(&amqp091.TxCommitOk{})
}

// txRouting is the bias a commit's pending count holds while it routes:
// larger than any number of appends one commit makes.
const txRouting = 1 << 40
