package broker

import (
	"cmp"
	"slices"
)

// qindex holds a quorum machine's messages by id. Every replica looks a
// message up on each settlement and adds and removes one per publish, so
// a map cost several hashed operations per message on every node. Ids
// are given in increasing order and messages mostly leave in about that
// order, so the index is a window of slots: the message with id base+i
// is win[start+i] (nil once it left). Adding appends; removing clears a
// slot and moves the window's front past the empty ones.
//
// One message held for a long time (a consumer that never acks) would
// keep the window from moving and make it grow by a slot per message
// published since. So when the window is mostly empty (more than
// qindexSparse slots and under a quarter of them live), the live
// messages at its front move to a map (old) until it is dense again:
// each message moves at most once, and the window stays within four
// times the live messages plus qindexSparse slots.
type qindex struct {
	win   []*qmsg // win[start:] holds ids base, base+1, …
	start int
	base  uint64
	live  int              // non-nil slots in win[start:]
	old   map[uint64]*qmsg // messages below base still in the queue; nil when none
}

// qindexSparse is the window length below which a sparse window is left
// as it is.
const qindexSparse = 4096

func (x *qindex) len() int { return x.live + len(x.old) }

func (x *qindex) get(id uint64) *qmsg {
	if id >= x.base {
		if i := id - x.base; i < uint64(len(x.win)-x.start) {
			return x.win[x.start+int(i)]
		}
		return nil
	}
	return x.old[id] // nil map: nil
}

// add indexes q, whose id must be above every id the index holds or held
// since it was last empty (ids only grow).
func (x *qindex) add(q *qmsg) {
	n := len(x.win) - x.start
	if n > 0 && q.id-(x.base+uint64(n)) > qindexSparse {
		// A wide gap (a snapshot of a few messages far apart): the
		// window's messages go to old rather than the gap into slots.
		x.spillAll()
		n = 0
	}
	if n == 0 {
		x.win, x.start, x.base = x.win[:0], 0, q.id
	}
	for end := x.base + uint64(len(x.win)-x.start); end < q.id; end++ {
		x.win = append(x.win, nil) // a gap: ids never used (a refused enqueue) or restored without
	}
	x.win = append(x.win, q)
	x.live++
	x.maybeSpill()
}

// remove forgets q.
func (x *qindex) remove(q *qmsg) {
	if q.id < x.base {
		delete(x.old, q.id)
		if len(x.old) == 0 {
			x.old = nil
		}
		return
	}
	i := x.start + int(q.id-x.base)
	if i >= len(x.win) || x.win[i] != q {
		return
	}
	x.win[i] = nil
	x.live--
	x.trimFront()
	x.maybeSpill()
}

// maybeSpill spills when the window is long and mostly empty.
func (x *qindex) maybeSpill() {
	if n := len(x.win) - x.start; n > qindexSparse && x.live*4 < n {
		x.spill()
	}
}

// trimFront moves the window past the empty slots at its front, and
// moves the window down its array once the array is mostly behind it.
func (x *qindex) trimFront() {
	for x.start < len(x.win) && x.win[x.start] == nil {
		x.start++
		x.base++
	}
	if x.start == len(x.win) {
		x.win, x.start = x.win[:0], 0
		return
	}
	if x.start >= 1024 && x.start*2 >= len(x.win) {
		n := copy(x.win, x.win[x.start:])
		clear(x.win[n:])
		x.win, x.start = x.win[:n], 0
	}
}

// spill moves the live messages at the window's front to old until at
// least half of the window is live.
func (x *qindex) spill() {
	if x.old == nil {
		x.old = map[uint64]*qmsg{}
	}
	for x.start < len(x.win) && x.live*2 < len(x.win)-x.start {
		if q := x.win[x.start]; q != nil {
			x.old[q.id] = q
			x.win[x.start] = nil
			x.live--
		}
		x.start++
		x.base++
	}
	x.trimFront()
}

// spillAll moves every message of the window to old and empties it.
func (x *qindex) spillAll() {
	if x.old == nil {
		x.old = map[uint64]*qmsg{}
	}
	for _, q := range x.win[x.start:] {
		if q != nil {
			x.old[q.id] = q
		}
	}
	clear(x.win)
	x.win, x.start, x.live = x.win[:0], 0, 0
}

// each calls fn for every message, in no particular order.
func (x *qindex) each(fn func(q *qmsg)) {
	for _, q := range x.old {
		fn(q)
	}
	for _, q := range x.win[x.start:] {
		if q != nil {
			fn(q)
		}
	}
}

// sorted returns every message by id.
func (x *qindex) sorted() []*qmsg {
	out := make([]*qmsg, 0, x.len())
	for _, q := range x.old {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b *qmsg) int { return cmp.Compare(a.id, b.id) })
	for _, q := range x.win[x.start:] {
		if q != nil {
			out = append(out, q)
		}
	}
	return out
}

// A consumer's checked-out messages are a list through the messages
// themselves (qmsg.prev, next): assigning and settling one costs no map
// operation, and the few operations that walk them (a cancel, a node
// down, a snapshot's restore) walk only that consumer's.

// hold checks q out to c.
func (c *qconsumer) hold(q *qmsg) {
	q.owner = c
	q.prev, q.next = nil, c.first
	if c.first != nil {
		c.first.prev = q
	}
	c.first = q
	c.nout++
}

// release takes q, checked out to c, back from it.
func (c *qconsumer) release(q *qmsg) {
	if q.prev != nil {
		q.prev.next = q.next
	} else {
		c.first = q.next
	}
	if q.next != nil {
		q.next.prev = q.prev
	}
	q.prev, q.next, q.owner = nil, nil, nil
	c.nout--
}

// sortedOut returns the messages c holds, by id.
func sortedOut(c *qconsumer) []*qmsg {
	out := make([]*qmsg, 0, c.nout)
	for q := c.first; q != nil; q = q.next {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b *qmsg) int { return cmp.Compare(a.id, b.id) })
	return out
}

// heldBy returns the message id if c holds it.
func (m *quorumMachine) heldBy(c *qconsumer, id uint64) *qmsg {
	if q := m.msgs.get(id); q != nil && q.owner == c && c != nil {
		return q
	}
	return nil
}
