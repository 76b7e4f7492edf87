// Package outbox is a connection's outbound byte buffer and the writer
// goroutine that drains it, shared by the protocol adapters.
//
// Producers — the connection's reader, and queues delivering on any
// goroutine — append encoded frames through Append or AppendDelivery, which
// hold the outbox's own lock while their callback writes into the buffer;
// the writer swaps the buffer out and writes it with one syscall, so many
// frames cost one write. The buffer is bounded for deliveries:
// AppendDelivery refuses past the limit and records that a consumer waits,
// and the writer calls its drain callback once it has written, so
// deliveries resume.
//
// A reader may Hold an on-demand outbox while it handles a batch of
// packets and Release it afterwards, writing the batch's frames in one
// non-blocking write of its own (hold.go).
//
// The lock is unexported: only this package's methods touch the buffer, so
// what it guards is visible here. A callback runs with it held and must not
// call back into the outbox.
package outbox

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is a connection's outbound byte buffer.
type Outbox struct {
	limit int // deliveries are refused while len(buf) exceeds it

	mu      sync.Mutex
	buf     []byte // guarded by mu: encoded frames waiting for the writer
	spare   []byte // guarded by mu: the last written buffer, reused
	closing bool   // guarded by mu: flush what is buffered, then close the socket
	starved bool   // guarded by mu: a delivery was refused for lack of room; redispatch after draining

	wake      chan struct{} // Run's; nil for an on-demand outbox
	demand    *demand       // non-nil: written on demand (demand.go), not by Run
	lastWrite atomic.Int64  // UnixNano of Run's last socket write, for its heartbeats (an on-demand outbox has none)
}

// New returns an outbox refusing deliveries past limit bytes. Its buffers
// start empty and grow with the traffic, so an idle connection holds none.
func New(limit int) *Outbox {
	return &Outbox{wake: make(chan struct{}, 1), limit: limit}
}

// signalLocked wakes the writer; mu must be held.
func (o *Outbox) signalLocked() {
	if o.demand != nil {
		o.startLocked()
		return
	}
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Write appends b and wakes the writer.
func (o *Outbox) Write(b []byte) {
	o.mu.Lock()
	o.growLocked()
	o.buf = append(o.buf, b...)
	o.signalLocked()
	o.mu.Unlock()
}

// Append lets add extend the buffer (add returns it, longer or unchanged)
// and wakes the writer. add runs under the outbox's lock, so frames that
// must stay in order with something the caller numbers (delivery tags,
// packet ids) are numbered inside it.
func (o *Outbox) Append(add func(buf []byte) []byte) {
	o.mu.Lock()
	o.growLocked()
	o.buf = add(o.buf)
	o.signalLocked()
	o.mu.Unlock()
}

// AppendDelivery is Append for a delivery, which the buffer's bound
// applies to: when the buffer is past its limit, add is not called, the
// outbox records that a consumer waits for room, and it returns false; the
// writer calls its drain callback once it has written.
func (o *Outbox) AppendDelivery(add func(buf []byte) []byte) bool {
	o.mu.Lock()
	if len(o.buf) > o.limit {
		o.starved = true
		o.mu.Unlock()
		return false
	}
	o.growLocked()
	o.buf = add(o.buf)
	o.signalLocked()
	o.mu.Unlock()
	return true
}

// CloseAfterFlush makes the writer close the socket once the buffer is out.
func (o *Outbox) CloseAfterFlush() {
	o.mu.Lock()
	o.closing = true
	o.signalLocked()
	o.mu.Unlock()
}

// Run is the writer goroutine. It returns when done closes or the socket
// fails (onError is called, with nil after a requested close). onDrain is
// called, without locks, after a write that freed room for refused
// deliveries. With heartbeat > 0, heartbeatFrame is appended whenever
// nothing was written for half the interval.
func (o *Outbox) Run(nc net.Conn, heartbeat time.Duration, heartbeatFrame func([]byte) []byte, done <-chan struct{}, onDrain func(), onError func(error)) {
	var tick <-chan time.Time
	if heartbeat > 0 {
		t := time.NewTicker(heartbeat / 2)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-o.wake:
		case <-tick:
			if heartbeatFrame != nil && time.Since(time.Unix(0, o.lastWrite.Load())) >= heartbeat/2 {
				o.mu.Lock()
				o.buf = heartbeatFrame(o.buf)
				o.mu.Unlock()
			}
		case <-done:
			return
		}
		o.mu.Lock()
		out := o.buf
		o.buf, o.spare = o.spare[:0], nil
		closing, starved := o.closing, o.starved
		o.starved = false
		o.mu.Unlock()
		if len(out) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := nc.Write(out)
			o.lastWrite.Store(time.Now().UnixNano())
			if err != nil {
				onError(err)
				return
			}
		}
		o.mu.Lock()
		if cap(out) > 4<<20 {
			out = nil // do not pin a burst's buffer forever
		}
		o.spare = out[:0]
		more := len(o.buf) > 0
		o.mu.Unlock()
		if closing && !more {
			onError(nil)
			return
		}
		if starved {
			onDrain()
		}
		if more {
			o.mu.Lock()
			o.signalLocked()
			o.mu.Unlock()
		}
	}
}

// writeTimeout bounds one socket write, so a client that stops reading is
// eventually dropped instead of pinning memory forever.
const writeTimeout = 60 * time.Second
