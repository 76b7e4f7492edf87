package mqtt

import (
	"testing"
	"time"
)

// The gate lets maxHandshakes in, queues the rest, and hands each freed
// place to the oldest waiting connection, in arrival order, across the
// queue's compaction; a place goes back only when none waits.
func TestHandshakeGateBoundsAndHandsOnInOrder(t *testing.T) {
	var g handshakeGate
	for i := range maxHandshakes {
		if !g.enter(&conn{id: uint64(i)}) {
			t.Fatalf("handshake %d refused a place with %d running", i, i)
		}
	}
	const extra = 3000 // past the compaction threshold
	for i := range extra {
		if g.enter(&conn{id: uint64(maxHandshakes + i)}) {
			t.Fatalf("handshake %d got a place beyond the %d", maxHandshakes+i, maxHandshakes)
		}
	}
	if q := g.queued.Load(); q != extra {
		t.Fatalf("queued = %d, want %d", q, extra)
	}
	next := uint64(maxHandshakes)
	for i := range extra {
		c := g.leave()
		if c == nil {
			t.Fatalf("leave %d found no waiting connection", i)
		}
		if c.id != next {
			t.Fatalf("leave %d handed on connection %d, want %d (arrival order)", i, c.id, next)
		}
		next++
		if i%2 == 0 {
			// Arrivals while the queue drains keep their order too.
			if g.enter(&conn{id: uint64(maxHandshakes + extra + i/2)}) {
				t.Fatal("a place was free while connections waited")
			}
		}
	}
	for g.queued.Load() > 0 {
		c := g.leave()
		if c == nil || c.id != next {
			t.Fatalf("got %v, want connection %d", c, next)
		}
		next++
	}
	for i := range maxHandshakes {
		if c := g.leave(); c != nil {
			t.Fatalf("leave %d handed on connection %d with none waiting", i, c.id)
		}
	}
	if g.running != 0 {
		t.Fatalf("running = %d after every place was given back", g.running)
	}
	if !g.enter(&conn{}) {
		t.Fatal("an empty gate refused a place")
	}
}

// A handshake taking a place again after a takeover (enterWait) waits only
// while every place is held, and is handed the next freed place before the
// connections waiting in the FIFO; it counts as waiting meanwhile.
func TestHandshakeGateResumingHandshakeGoesFirst(t *testing.T) {
	var g handshakeGate
	for i := range maxHandshakes {
		g.enter(&conn{id: uint64(i)})
	}
	queued := &conn{id: 1000}
	if g.enter(queued) {
		t.Fatal("a place was free with every place held")
	}
	got := make(chan struct{})
	go func() {
		g.enterWait()
		close(got)
	}()
	for g.queued.Load() != 2 {
		time.Sleep(time.Millisecond) // bounded by the test's timeout: enterWait queues at once
	}
	select {
	case <-got:
		t.Fatal("enterWait took a place with every place held")
	default:
	}
	if c := g.leave(); c != nil {
		t.Fatalf("leave handed the place to connection %d, not to the resuming handshake", c.id)
	}
	<-got
	if c := g.leave(); c != queued {
		t.Fatalf("the next place went to %v, want the queued connection", c)
	}
	if g.queued.Load() != 0 || g.running != maxHandshakes {
		t.Fatalf("queued %d running %d", g.queued.Load(), g.running)
	}
	g.running-- // the resuming handshake's place, given back by its runner
	g.enterWait()
	if g.running != maxHandshakes {
		t.Fatalf("enterWait with a free place: running %d", g.running)
	}
}
