package mqtt

import (
	"sync"
	"time"
)

// wheel holds the deadlines of parked connections — the CONNECT timeout
// before CONNECT, 1.5 × the keep-alive after — in one hashed timing wheel
// instead of a runtime timer per connection: inserting and removing are
// O(1) on an intrusive list, and one goroutine ticks while any deadline is
// set. A deadline fires at the first tick at or after it, so at most one
// tick (wheelTick) late and never early.
type wheel struct {
	tick   time.Duration
	expire func(*conn) // called without the lock, for each expired connection

	mu      sync.Mutex
	slots   []*conn // each slot: a doubly linked list through conn.wnext/wprev
	count   int
	start   time.Time // tick 0
	visited int64     // the last tick whose slot was visited
	running bool      // the ticking goroutine runs
	stopped bool
	stop    chan struct{}
}

const (
	wheelTick  = 50 * time.Millisecond
	wheelSlots = 4096 // 204.8 s a round: a deadline further out waits its round in its slot
)

func newWheel(tick time.Duration, expire func(*conn)) *wheel {
	return &wheel{tick: tick, expire: expire, slots: make([]*conn, wheelSlots), start: time.Now(), stop: make(chan struct{})}
}

// tickOf is the first tick at or after t.
func (w *wheel) tickOf(t time.Time) int64 {
	d := t.Sub(w.start)
	if d <= 0 {
		return 0
	}
	return int64((d + w.tick - 1) / w.tick)
}

// set puts c in the wheel with deadline at (replacing its current one).
func (w *wheel) set(c *conn, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	w.removeLocked(c)
	// A deadline already passed fires at the next tick (its slot may have
	// been visited this round).
	c.wtick = max(w.tickOf(at), w.visited+1)
	s := int(c.wtick % wheelSlots)
	c.wslot = s + 1
	c.wprev, c.wnext = nil, w.slots[s]
	if c.wnext != nil {
		c.wnext.wprev = c
	}
	w.slots[s] = c
	w.count++
	if !w.running {
		w.running = true
		go w.run()
	}
}

// remove takes c out of the wheel, if it is in.
func (w *wheel) remove(c *conn) {
	w.mu.Lock()
	w.removeLocked(c)
	w.mu.Unlock()
}

func (w *wheel) removeLocked(c *conn) {
	if c.wslot == 0 {
		return
	}
	if c.wprev != nil {
		c.wprev.wnext = c.wnext
	} else {
		w.slots[c.wslot-1] = c.wnext
	}
	if c.wnext != nil {
		c.wnext.wprev = c.wprev
	}
	c.wprev, c.wnext, c.wslot = nil, nil, 0
	w.count--
}

// run ticks while the wheel holds deadlines.
func (w *wheel) run() {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	var expired []*conn
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			w.mu.Lock()
			expired = w.advanceLocked(now, expired[:0])
			idle := w.count == 0
			if idle {
				w.running = false
			}
			w.mu.Unlock()
			for i, c := range expired {
				w.expire(c)
				expired[i] = nil
			}
			if idle {
				return
			}
		}
	}
}

// advanceLocked takes out every connection whose deadline is at or
// before now. Ticks are visited from the last one visited, so a late tick
// (a loaded machine) misses none.
func (w *wheel) advanceLocked(now time.Time, out []*conn) []*conn {
	cur := int64(now.Sub(w.start) / w.tick)
	from := w.visited + 1
	if cur-from >= wheelSlots {
		from = cur - wheelSlots + 1
	}
	for tk := from; tk <= cur; tk++ {
		for c := w.slots[tk%wheelSlots]; c != nil; {
			next := c.wnext
			if c.wtick <= cur {
				w.removeLocked(c)
				out = append(out, c)
			}
			c = next
		}
	}
	w.visited = cur
	return out
}

// close stops the ticking goroutine; later sets are ignored.
func (w *wheel) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.stopped = true
		close(w.stop)
	}
}
