// Package outbox is a connection's outbound byte buffer and the writer
// goroutine that drains it, shared by the protocol adapters.
//
// Producers — the connection's reader, and queues delivering on any
// goroutine — append encoded frames under Mu and call SignalLocked; the
// writer swaps the buffer out and writes it with one syscall, so many
// frames cost one write. The buffer is bounded for deliveries: RoomLocked
// refuses past Limit and records that a consumer waits, and the writer calls
// its drain callback once it has written, so deliveries resume.
package outbox

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Outbox is a connection's outbound byte buffer.
type Outbox struct {
	Mu      sync.Mutex
	Buf     []byte // guarded by Mu: append encoded frames here
	spare   []byte
	closing bool // flush what is buffered, then close the socket
	starved bool // a delivery was refused for lack of room; redispatch after draining
	limit   int  // deliveries are refused while len(Buf) exceeds it

	wake      chan struct{}
	lastWrite atomic.Int64 // UnixNano of the last socket write, for heartbeats
}

// New returns an outbox refusing deliveries past limit bytes. Its buffers
// start empty and grow with the traffic, so an idle connection holds none.
func New(limit int) *Outbox {
	return &Outbox{wake: make(chan struct{}, 1), limit: limit}
}

// SignalLocked wakes the writer; Mu must be held.
func (o *Outbox) SignalLocked() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Write appends b and wakes the writer.
func (o *Outbox) Write(b []byte) {
	o.Mu.Lock()
	o.Buf = append(o.Buf, b...)
	o.SignalLocked()
	o.Mu.Unlock()
}

// CloseAfterFlush makes the writer close the socket once the buffer is out.
func (o *Outbox) CloseAfterFlush() {
	o.Mu.Lock()
	o.closing = true
	o.SignalLocked()
	o.Mu.Unlock()
}

// RoomLocked reports whether a delivery may be appended; if not it records
// that a consumer is waiting for room. Mu must be held.
func (o *Outbox) RoomLocked() bool {
	if len(o.Buf) <= o.limit {
		return true
	}
	o.starved = true
	return false
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
				o.Mu.Lock()
				o.Buf = heartbeatFrame(o.Buf)
				o.Mu.Unlock()
			}
		case <-done:
			return
		}
		o.Mu.Lock()
		out := o.Buf
		o.Buf, o.spare = o.spare[:0], nil
		closing, starved := o.closing, o.starved
		o.starved = false
		o.Mu.Unlock()
		if len(out) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := nc.Write(out)
			o.lastWrite.Store(time.Now().UnixNano())
			if err != nil {
				onError(err)
				return
			}
		}
		o.Mu.Lock()
		if cap(out) > 4<<20 {
			out = nil // do not pin a burst's buffer forever
		}
		o.spare = out[:0]
		more := len(o.Buf) > 0
		o.Mu.Unlock()
		if closing && !more {
			onError(nil)
			return
		}
		if starved {
			onDrain()
		}
		if more {
			o.Mu.Lock()
			o.SignalLocked()
			o.Mu.Unlock()
		}
	}
}

// writeTimeout bounds one socket write, so a client that stops reading is
// eventually dropped instead of pinning memory forever.
const writeTimeout = 60 * time.Second
