package broker

// deque is a ring buffer of queue entries: O(1) push and pop at both ends,
// which FIFO delivery and in-order requeue need.
type deque struct {
	buf  []entry
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	nb := make([]entry, max(16, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(e entry) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = e
	d.n++
}

func (d *deque) pushFront(e entry) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = e
	d.n++
}

// front returns the first entry; the deque must not be empty.
func (d *deque) front() *entry { return &d.buf[d.head] }

func (d *deque) popFront() entry {
	e := d.buf[d.head]
	d.buf[d.head] = entry{}
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
	}
	return e
}

// at returns the i-th entry from the front.
func (d *deque) at(i int) *entry { return &d.buf[(d.head+i)%len(d.buf)] }

// insertSorted puts e among entries ordered by seq. Requeued entries are
// usually older than all ready ones, so the common case is pushFront.
func (d *deque) insertSorted(e entry) {
	if d.n == 0 || e.seq < d.front().seq {
		d.pushFront(e)
		return
	}
	if e.seq > d.at(d.n-1).seq {
		d.pushBack(e)
		return
	}
	// Find the first entry with a larger seq and shift the tail right by one.
	lo, hi := 0, d.n
	for lo < hi {
		mid := (lo + hi) / 2
		if d.at(mid).seq < e.seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	d.pushBack(entry{})
	for i := d.n - 1; i > lo; i-- {
		*d.at(i) = *d.at(i - 1)
	}
	*d.at(lo) = e
}

// find returns the entry with seq, or nil. Entries are ordered by seq:
// publishes append ascending, requeues insert in order.
func (d *deque) find(seq uint64) *entry {
	lo, hi := 0, d.n
	for lo < hi {
		mid := (lo + hi) / 2
		if d.at(mid).seq < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < d.n && d.at(lo).seq == seq {
		return d.at(lo)
	}
	return nil
}
