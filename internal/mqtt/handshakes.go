package mqtt

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxHandshakes bounds the connections running their handshake at once
// (handshakeGate). A persistent session's handshake waits on the vhost's
// lock and then on the definitions log's group-committed fdatasync: a
// hundred or so waiting at once fill each fsync (a fsync of a few
// milliseconds still lets tens of thousands of declares a second
// through), and more only add goroutines.
const maxHandshakes = 128

// handshakeGate bounds the wake-ups of connections that have not yet
// connected (their handshake) running at once; the others wait in a FIFO
// queue holding no goroutine, and a runner that finishes a handshake runs
// the next waiting one on its own, already grown, stack.
//
// Without it a connect storm of persistent sessions had about 1,800
// handshakes running at once, a goroutine each: ~1,000 waiting for the
// vhost's lock, ~600 for the fsync. Each started on a new goroutine whose
// stack grew to ~16 KiB, and every garbage collection scanned all of them
// and halved the stacks of those waiting (copying each), so the broker's
// CPU per connect went to stacks rather than connects. Connections
// waiting here are accepted sockets whose CONNECT sits in the kernel's
// buffer; they are served in arrival order, and a kick (takeover,
// shutdown) reaches them when they run, as it reaches a running one.
type handshakeGate struct {
	mu      sync.Mutex
	running int // handshakes with a place (running, or handed on)
	waiting []*conn
	head    int // waiting[head:] wait, oldest first
	// resuming are the handshakes waiting to take a place again after a
	// takeover (enterWait), served first, oldest first.
	resuming []chan struct{}
	queued   atomic.Int64 // len(waiting[head:]) + len(resuming)
}

// enter gives c a place and says so, or queues c for a place (false): c is
// then run by whichever runner frees one (leave).
func (g *handshakeGate) enter(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running < maxHandshakes {
		g.running++
		return true
	}
	if g.head > 1024 && 2*g.head > len(g.waiting) {
		// Drop the served front, so a queue that never empties does not
		// keep growing its array.
		n := copy(g.waiting, g.waiting[g.head:])
		clear(g.waiting[n:])
		g.waiting, g.head = g.waiting[:n], 0
	}
	g.waiting = append(g.waiting, c)
	g.queued.Add(1)
	return false
}

// leave gives up a finished handshake's place: to a handshake waiting to
// take one again after a takeover (enterWait), or to the oldest waiting
// connection, which it returns for the caller to run, or back (nil).
func (g *handshakeGate) leave() *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.resuming) > 0 {
		close(g.resuming[0]) // the place is that handshake's now
		g.resuming[0] = nil
		g.resuming = g.resuming[1:]
		if len(g.resuming) == 0 {
			g.resuming = nil
		}
		g.queued.Add(-1)
		return nil
	}
	if g.head == len(g.waiting) {
		g.running--
		return nil
	}
	c := g.waiting[g.head]
	g.waiting[g.head] = nil
	g.head++
	if g.head == len(g.waiting) {
		g.waiting, g.head = g.waiting[:0], 0
	}
	g.queued.Add(-1)
	return c
}

// A handshake that waits on a takeover — an older connection of its client
// id closing here (up to 5 s), or the other nodes of a cluster answering (up
// to 3 s) — gives its place up once the wait has lasted takeoverGrace, so
// that slow takeovers (a peer or an old connection slow to close) do not
// hold every place and stall the CONNECTs of every other client behind
// them (review11 F1). A takeover answered at once (every CONNECT in a
// cluster asks the other nodes) keeps its place: a connect storm still
// waits in the FIFO without goroutines. After the wait the handshake takes
// a place again (reenter) before its costly part (the session's declare and
// the definitions log's fsync, which the bound is for), ahead of the
// connections in the FIFO: it already has a goroutine.
const takeoverGrace = 20 * time.Millisecond

// gateHold is a runner's hold on the handshake place of the connection it
// runs (runners.loop sets conn.hold before each gated run). held is written
// by the run's goroutine, or by the yield's timer while that goroutine
// waits for it (gateYield.end), so it needs no lock.
type gateHold struct {
	r    *runners
	held bool
}

// gateYield gives a handshake's place up if its wait outlasts the grace.
type gateYield struct {
	h    *gateHold
	t    *time.Timer
	done chan struct{}
}

// yieldGate starts the grace of a wait on a takeover; nil when the
// handshake holds no place (a connection served by its own goroutine: TLS,
// WebSocket) or does not wait (wait false).
func (c *conn) yieldGate(wait bool) *gateYield {
	h := c.hold
	if !wait || h == nil || !h.held {
		return nil
	}
	y := &gateYield{h: h, done: make(chan struct{})}
	y.t = time.AfterFunc(takeoverGrace, func() {
		defer close(y.done)
		h.held = false
		if next := h.r.gate.leave(); next != nil {
			h.r.startJob(runJob{c: next, gated: true}) // on a runner of its own
		}
	})
	return y
}

// end ends the wait: the place is held again when it had been given up and
// the handshake goes on (reenter), else it stays given up (a refusal), and
// the runner does not give it up a second time (loop).
func (y *gateYield) end(reenter bool) {
	if y == nil || y.t.Stop() {
		return // the grace had not passed: the place was kept
	}
	<-y.done
	if reenter {
		y.h.r.gate.enterWait()
		y.h.held = true
	}
}

// enterWait takes a place, waiting for one (on the caller's goroutine)
// when none is free: the handshakes that gave theirs up during a takeover
// are handed one before the connections in the FIFO.
func (g *handshakeGate) enterWait() {
	g.mu.Lock()
	if g.running < maxHandshakes {
		g.running++
		g.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	g.resuming = append(g.resuming, ch)
	g.queued.Add(1)
	g.mu.Unlock()
	<-ch // the place is handed on by leave
}
