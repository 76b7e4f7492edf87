package amqp

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// outbox is a connection's outbound byte buffer. Producers (the reader, and
// queues delivering on any goroutine) append encoded frames under mu; the
// writer goroutine swaps the buffer out and writes it with one syscall, so
// many frames cost one write.
type outbox struct {
	mu      sync.Mutex
	buf     []byte
	spare   []byte
	closing bool // flush what is buffered, then close the socket
	starved bool // a delivery was refused for lack of room; redispatch after draining
	limit   int  // deliveries are refused while len(buf) exceeds it

	wake      chan struct{}
	lastWrite atomic.Int64 // UnixNano of the last socket write, for heartbeats
}

func newOutbox(limit int) *outbox {
	// The buffers start empty and grow with the traffic, so an idle
	// connection holds none.
	return &outbox{wake: make(chan struct{}, 1), limit: limit}
}

// signalLocked wakes the writer.
func (o *outbox) signalLocked() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// appendMethod queues a method frame.
func (o *outbox) appendMethod(channel uint16, m amqp091.Method) {
	o.mu.Lock()
	o.buf = amqp091.AppendMethodFrame(o.buf, channel, m)
	o.signalLocked()
	o.mu.Unlock()
}

// closeAfterFlush makes the writer close the socket once the buffer is out.
func (o *outbox) closeAfterFlush() {
	o.mu.Lock()
	o.closing = true
	o.signalLocked()
	o.mu.Unlock()
}

// roomLocked reports whether a delivery may be appended; if not it records
// that a consumer is waiting for room.
func (o *outbox) roomLocked() bool {
	if len(o.buf) <= o.limit {
		return true
	}
	o.starved = true
	return false
}

// run is the writer goroutine. It returns when the connection is done or the
// socket fails; onDrain is called (without locks) after a write that freed
// room for refused deliveries.
func (o *outbox) run(nc net.Conn, heartbeat time.Duration, done <-chan struct{}, onDrain func(), onError func(error)) {
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
			if time.Since(time.Unix(0, o.lastWrite.Load())) >= heartbeat/2 {
				o.mu.Lock()
				o.buf = amqp091.AppendHeartbeat(o.buf)
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
