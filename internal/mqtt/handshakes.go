package mqtt

import (
	"sync"
	"sync/atomic"
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
	queued  atomic.Int64
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

// leave gives up a finished handshake's place: to the oldest waiting
// connection, which it returns for the caller to run, or back (nil).
func (g *handshakeGate) leave() *conn {
	g.mu.Lock()
	defer g.mu.Unlock()
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
