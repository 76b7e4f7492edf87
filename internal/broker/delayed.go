package broker

import (
	"container/heap"
	"sync"
	"time"
)

// delayQueue holds messages published to an x-delayed-message exchange until
// their x-delay has passed, then routes them. Messages are held in memory in
// this version.
type delayQueue struct {
	x       *Exchange
	mu      sync.Mutex
	items   delayHeap
	timer   *time.Timer
	seq     uint64
	stopped bool
}

type delayed struct {
	at  int64
	seq uint64 // keeps equal due times in publish order
	m   *Message
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newDelayQueue(x *Exchange) *delayQueue { return &delayQueue{x: x} }

// delayOf reads the x-delay header in milliseconds; non-positive or absent
// means no delay.
func delayOf(m *Message) (time.Duration, bool) {
	n, ok := argInt(m.Props.Headers["x-delay"])
	if !ok || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

func (d *delayQueue) add(m *Message, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.seq++
	heap.Push(&d.items, delayed{at: time.Now().Add(delay).UnixNano(), seq: d.seq, m: m})
	d.armLocked()
}

func (d *delayQueue) armLocked() {
	if len(d.items) == 0 {
		return
	}
	wait := time.Duration(d.items[0].at - time.Now().UnixNano())
	if d.timer == nil {
		d.timer = time.AfterFunc(max(wait, 0), d.fire)
	} else {
		d.timer.Reset(max(wait, 0))
	}
}

func (d *delayQueue) fire() {
	var due []*Message
	d.mu.Lock()
	now := time.Now().UnixNano()
	for len(d.items) > 0 && d.items[0].at <= now {
		due = append(due, heap.Pop(&d.items).(delayed).m)
	}
	if !d.stopped {
		d.armLocked()
	}
	d.mu.Unlock()
	var s RouteScratch
	v := d.x.vhost
	for _, m := range due {
		v.deliverTo(v.routeAll(&s, d.x, m), m, nil, 0)
	}
}

// Pending returns how many messages wait for their delay.
func (d *delayQueue) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.items)
}

func (d *delayQueue) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.items = nil
}
