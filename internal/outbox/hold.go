package outbox

// Holding an on-demand outbox (issue 16: CPU per message). A connection's
// reader handles every packet one read brought before it reads again; the
// acknowledgements and deliveries those packets cause would each start
// (or wake) the writer goroutine and cost a write(2) of their own. While
// the reader holds its outbox, appends only fill the buffer; Release then
// writes the whole batch at once, first on the reader's own goroutine
// without blocking (try), and only what the socket would not take goes to
// a writer goroutine. So a wake-up that handled n packets costs one write
// and no goroutine hop, however many frames it produced.

// Hold makes appends wait for Release before anything is written. Only
// the reader holds (one hold at a time); it must Release.
func (o *Outbox) Hold() {
	if o.demand == nil {
		return
	}
	o.mu.Lock()
	o.demand.held = true
	o.mu.Unlock()
}

// Release ends a Hold and writes what the buffer holds: try writes without
// blocking and returns how many bytes the socket took (nil: no inline
// write); the rest, and anything a close or a refused delivery asked of
// the writer, goes to the writer goroutine.
func (o *Outbox) Release(try func([]byte) int) {
	d := o.demand
	if d == nil {
		return
	}
	o.mu.Lock()
	d.held = false
	o.flushLocked(try)
	o.mu.Unlock()
}

// AppendDeliveryDeferred is AppendDelivery without starting the writer:
// the caller must call Flush afterwards (an MQTT reader writing, after
// its read, the deliveries its publishes made to other connections).
func (o *Outbox) AppendDeliveryDeferred(add func(buf []byte) []byte) bool {
	if o.demand == nil {
		return o.AppendDelivery(add)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.buf) > o.limit {
		o.starved = true
		return false
	}
	o.growLocked()
	o.buf = add(o.buf)
	return true
}

// Flush writes what the buffer holds as Release does (inline with the
// TryWrite function, the rest by the writer), unless the writer runs or
// the reader holds the outbox: they write it.
func (o *Outbox) Flush() {
	if o.demand == nil {
		return
	}
	o.mu.Lock()
	if !o.demand.held {
		o.flushLocked(o.demand.try)
	}
	o.mu.Unlock()
}

// flushLocked is Release's and Flush's write; mu is held and the outbox
// is not held by its reader. It unlocks mu while it writes.
func (o *Outbox) flushLocked(try func([]byte) int) {
	d := o.demand
	if d.writing || d.ended || len(o.buf) == 0 || o.closing || o.starved || try == nil {
		o.startIfNeededLocked()
		return
	}
	out := o.buf
	o.buf = nil
	d.writing = true // appends meanwhile only buffer
	o.mu.Unlock()

	n := try(out) // lastWrite is not kept: only Run's heartbeats read it

	o.mu.Lock()
	d.writing = false
	if n < len(out) {
		// Keep the order: the unwritten tail, then what came meanwhile.
		rest := append(out[:0:0], out[n:]...)
		o.buf = append(rest, o.buf...)
		putBuf(out)
	} else {
		putBuf(out) // no writer runs to keep it: an idle connection holds no buffer
	}
	o.startIfNeededLocked()
}

// startIfNeededLocked starts the writer if the buffer or a close or a
// refused delivery needs it; mu is held.
func (o *Outbox) startIfNeededLocked() {
	if len(o.buf) > 0 || o.closing || o.starved {
		o.startLocked()
	}
}
