package outbox

import (
	"net"
	"sync"
	"time"
)

// On-demand writing. Run is a goroutine per connection for the
// connection's whole life, parked on a channel when there is nothing to
// write; an idle MQTT connection cannot afford that goroutine's stack. An
// outbox made by NewOnDemand starts a writer goroutine when bytes are
// appended and none is running, and the writer ends once the buffer is
// empty, handing its buffer back to a pool: an idle connection holds
// neither a goroutine nor a buffer.

// NewOnDemand returns an outbox writing to nc on demand. onDrain and
// onError are Run's: onDrain after a write that freed room for refused
// deliveries, onError when a write fails or (with nil) after the close
// CloseAfterFlush asked for; the socket is the caller's to close.
func NewOnDemand(limit int, nc net.Conn, onDrain func(), onError func(error)) *Outbox {
	return &Outbox{limit: limit, demand: &demand{nc: nc, onDrain: onDrain, onError: onError}}
}

// TryWrite gives the writer a non-blocking write to try before nc.Write
// (which may wait, with a deadline): it returns how many bytes the socket
// took. Set it before anything is appended.
func (o *Outbox) TryWrite(try func([]byte) int) {
	if o.demand != nil {
		o.demand.try = try
	}
}

// demand is the state of an on-demand outbox; its fields are guarded by
// the outbox's mu.
type demand struct {
	nc      net.Conn
	try     func([]byte) int // TryWrite's; nil: none
	onDrain func()
	onError func(error)
	writing bool          // a writer goroutine (or Release's inline write) runs
	held    bool          // the reader holds the outbox (hold.go): no writer until Release
	ended   bool          // the writer ended for good (closed or failed)
	exited  chan struct{} // made by CloseAndWait, closed when ended
}

// bufPool holds written buffers for reuse by any on-demand outbox.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooled bounds the buffers kept in the pool: a burst's large buffer
// is left to the GC.
const maxPooled = 1 << 20

// startLocked starts the writer if there is anything to do; mu is held.
func (o *Outbox) startLocked() {
	d := o.demand
	if d.writing || d.ended || d.held {
		return
	}
	d.writing = true
	go o.writeOnDemand()
}

// writeOnDemand is the on-demand writer: it writes until the buffer is
// empty, then ends. While it runs it keeps the last written buffer as the
// next one (spare), as Run does, so a stream of deliveries does not grow a
// fresh buffer for every batch; when it ends both go back to the pool.
func (o *Outbox) writeOnDemand() {
	d := o.demand
	for {
		o.mu.Lock()
		out := o.buf
		o.buf = nil
		closing, starved := o.closing, o.starved
		o.starved = false
		if len(out) == 0 && !closing && !starved {
			d.writing = false
			spare := o.spare
			o.spare = nil
			o.mu.Unlock()
			putBuf(out)
			putBuf(spare)
			return
		}
		o.mu.Unlock()
		if len(out) > 0 {
			n := 0
			if d.try != nil {
				n = d.try(out)
			}
			if n < len(out) {
				_ = d.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
				_, err := d.nc.Write(out[n:])
				if err != nil {
					o.endWriter()
					d.onError(err)
					return
				}
			}
		}
		var drop []byte
		o.mu.Lock()
		if o.spare == nil && cap(out) <= maxSpare {
			o.spare = out[:0]
		} else {
			drop = out
		}
		more := len(o.buf) > 0
		o.mu.Unlock()
		putBuf(drop)
		if closing && !more {
			o.endWriter()
			d.onError(nil)
			return
		}
		if starved {
			d.onDrain()
		}
	}
}

// maxSpare bounds the buffer a running writer keeps for the next batch.
const maxSpare = 4 << 20

// putBuf returns a buffer to the pool, if it is worth keeping.
func putBuf(b []byte) {
	if b != nil && cap(b) <= maxPooled {
		b = b[:0]
		bufPool.Put(&b)
	}
}

// endWriter records that the writer ended for good.
func (o *Outbox) endWriter() {
	o.mu.Lock()
	d := o.demand
	d.ended, d.writing = true, false
	if d.exited != nil {
		close(d.exited)
	}
	o.mu.Unlock()
}

// growLocked gives an empty buffer the writer's spare or a pooled backing
// array before frames are appended to it; mu is held.
func (o *Outbox) growLocked() {
	if o.demand == nil || o.buf != nil {
		return
	}
	if o.spare != nil {
		o.buf, o.spare = o.spare, nil
		return
	}
	o.buf = (*bufPool.Get().(*[]byte))[:0]
}

// CloseAndWait is CloseAfterFlush, then waits up to d for the writer to
// have written the buffer and ended. It reports whether it did. With
// nothing to write and no writer running it ends the outbox itself: the
// close callback (onError(nil)) runs on the caller's goroutine.
func (o *Outbox) CloseAndWait(d time.Duration) bool {
	o.mu.Lock()
	o.closing = true
	if o.demand == nil {
		o.signalLocked()
		o.mu.Unlock()
		return false
	}
	dm := o.demand
	if dm.ended {
		o.mu.Unlock()
		return true
	}
	if !dm.writing && !dm.held && len(o.buf) == 0 {
		// Nothing to write and no writer: end here, as the writer would,
		// rather than start one (a goroutine, a channel and a timer) only
		// to find that out — what every idle connection's close did.
		dm.ended = true
		if dm.exited != nil {
			close(dm.exited)
		}
		buf, spare := o.buf, o.spare
		o.buf, o.spare = nil, nil
		o.mu.Unlock()
		putBuf(buf)
		putBuf(spare)
		dm.onError(nil)
		return true
	}
	if dm.exited == nil {
		dm.exited = make(chan struct{})
	}
	ch := dm.exited
	o.startLocked()
	o.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
