package mqtt

import (
	"sync"
	"testing"
	"time"
)

// The wheel fires each deadline at the first tick at or after it — never
// early — and not at all for a connection taken out before it.
func TestWheelFiresDeadlinesNeverEarly(t *testing.T) {
	const tick = 10 * time.Millisecond
	var mu sync.Mutex
	fired := map[*conn]time.Time{}
	done := make(chan struct{}, 16)
	w := newWheel(tick, func(c *conn) {
		mu.Lock()
		fired[c] = time.Now()
		mu.Unlock()
		done <- struct{}{}
	})
	defer w.close()
	now := time.Now()
	deadlines := []time.Duration{-time.Second, 0, 15 * time.Millisecond, 40 * time.Millisecond, 120 * time.Millisecond}
	conns := make([]*conn, len(deadlines))
	for i, d := range deadlines {
		conns[i] = &conn{}
		w.set(conns[i], now.Add(d))
	}
	removed := &conn{}
	w.set(removed, now.Add(30*time.Millisecond))
	w.remove(removed)
	moved := &conn{}
	w.set(moved, now.Add(20*time.Millisecond))
	w.set(moved, now.Add(200*time.Millisecond)) // a later deadline replaces it
	for range len(deadlines) + 1 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("deadlines did not fire")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range conns {
		at, ok := fired[c]
		if !ok {
			t.Fatalf("deadline %v never fired", deadlines[i])
		}
		if want := now.Add(deadlines[i]); at.Before(want) {
			t.Fatalf("deadline %v fired %v early", deadlines[i], want.Sub(at))
		}
	}
	if _, ok := fired[removed]; ok {
		t.Fatal("a removed connection's deadline fired")
	}
	if at := fired[moved]; at.Before(now.Add(200 * time.Millisecond)) {
		t.Fatalf("a replaced deadline fired at the old time (%v)", at.Sub(now))
	}
	w.mu.Lock()
	left := w.count
	w.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d connections left in the wheel", left)
	}
}
