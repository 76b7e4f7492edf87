package mqtt

import "testing"

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
