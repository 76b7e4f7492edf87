package broker

// qring is a quorum queue's ready list: a ring buffer of messages ordered
// by id, so a returned message goes back to its original place. Publishes
// append (ids grow); returns are usually older than every ready message,
// so the common insert is at the front.
type qring struct {
	buf  []*qmsg
	head int
	n    int
}

func (r *qring) len() int { return r.n }

func (r *qring) grow() {
	nb := make([]*qmsg, max(16, 2*len(r.buf)))
	for i := 0; i < r.n; i++ {
		nb[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = nb, 0
}

func (r *qring) at(i int) *qmsg { return r.buf[(r.head+i)%len(r.buf)] }

func (r *qring) set(i int, m *qmsg) { r.buf[(r.head+i)%len(r.buf)] = m }

// front returns the first message; the ring must not be empty.
func (r *qring) front() *qmsg { return r.buf[r.head] }

func (r *qring) pushBack(m *qmsg) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.n++
}

func (r *qring) popFront() *qmsg {
	m := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	if r.n == 0 {
		r.head = 0
	}
	return m
}

// insertSorted puts m at its place by id.
func (r *qring) insertSorted(m *qmsg) {
	if r.n == 0 || m.id > r.at(r.n-1).id {
		r.pushBack(m)
		return
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	if m.id < r.front().id {
		r.head = (r.head - 1 + len(r.buf)) % len(r.buf)
		r.buf[r.head] = m
		r.n++
		return
	}
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.at(mid).id < m.id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	r.n++
	for i := r.n - 1; i > lo; i-- {
		r.set(i, r.at(i-1))
	}
	r.set(lo, m)
}
