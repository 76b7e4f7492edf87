package broker

import (
	"math/rand/v2"
	"testing"
)

// check verifies the index's own bookkeeping.
func (x *qindex) check(t testing.TB) {
	t.Helper()
	live := 0
	for i, q := range x.win[x.start:] {
		if q == nil {
			continue
		}
		live++
		if q.id != x.base+uint64(i) {
			t.Fatalf("index: slot %d (id %d) holds id %d", i, x.base+uint64(i), q.id)
		}
	}
	if live != x.live {
		t.Fatalf("index: %d live slots, counted %d", live, x.live)
	}
	if x.start < len(x.win) && x.win[x.start] == nil {
		t.Fatalf("index: the window starts with an empty slot")
	}
	for id, q := range x.old {
		if q.id != id || id >= x.base {
			t.Fatalf("index: old holds %d as %d (base %d)", q.id, id, x.base)
		}
	}
	if n := len(x.win) - x.start; n > qindexSparse && x.live*4 < n {
		t.Fatalf("index: window of %d slots with %d live", n, x.live)
	}
}

// TestQIndexAgainstAMap adds messages with growing ids (with gaps) and
// removes them in a mostly-FIFO order with stragglers that stay for
// long, as a queue with one consumer that never acks some messages does,
// and checks the index against a map after every step.
func TestQIndexAgainstAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		var x qindex
		model := map[uint64]*qmsg{}
		var order []uint64 // live ids, in the order they were added
		next := uint64(rng.IntN(3))
		for step := range 20000 {
			switch r := rng.IntN(100); {
			case r < 52:
				next += 1 + uint64(rng.IntN(2)) // a refused enqueue leaves a gap
				if round%3 == 0 && rng.IntN(3000) == 0 {
					next += qindexSparse + uint64(rng.IntN(3*qindexSparse)) // a wide gap (a restored snapshot)
				}
				q := &qmsg{id: next}
				x.add(q)
				model[q.id] = q
				order = append(order, q.id)
			case len(order) > 0:
				// Mostly the oldest; sometimes any; a few (the
				// stragglers) only after a long time.
				i := 0
				if rng.IntN(10) == 0 {
					i = rng.IntN(len(order))
				}
				id := order[i]
				if id%97 == 0 && step%10000 != 0 && len(order) > 1 {
					id = order[len(order)-1]
					i = len(order) - 1
				}
				order = append(order[:i], order[i+1:]...)
				x.remove(model[id])
				delete(model, id)
			}
			if step%64 == 0 {
				x.check(t) // walks the window: every step made the test slow
			}
			if x.len() != len(model) {
				t.Fatalf("round %d step %d: len %d, model %d", round, step, x.len(), len(model))
			}
			for _, probe := range []uint64{next, next + 1, uint64(rng.IntN(int(next) + 1))} {
				if got := x.get(probe); got != model[probe] {
					t.Fatalf("round %d step %d: get(%d) = %v, model %v", round, step, probe, got, model[probe])
				}
			}
		}
		x.check(t)
		sorted := x.sorted()
		if len(sorted) != len(model) {
			t.Fatalf("sorted: %d of %d", len(sorted), len(model))
		}
		for i, q := range sorted {
			if model[q.id] != q || (i > 0 && sorted[i-1].id >= q.id) {
				t.Fatalf("sorted: %d at %d", q.id, i)
			}
		}
		seen := 0
		x.each(func(q *qmsg) {
			if model[q.id] != q {
				t.Fatalf("each: %d not in the model", q.id)
			}
			seen++
		})
		if seen != len(model) {
			t.Fatalf("each: %d of %d", seen, len(model))
		}
	}
}

// TestQIndexStragglerBoundsTheWindow: one message held while 200,000
// pass keeps the window small (it moves to old).
func TestQIndexStragglerBoundsTheWindow(t *testing.T) {
	var x qindex
	held := &qmsg{id: 0}
	x.add(held)
	for id := uint64(1); id <= 200_000; id++ {
		q := &qmsg{id: id}
		x.add(q)
		x.remove(q)
	}
	if cap(x.win) > 4*qindexSparse || x.get(0) != held || x.len() != 1 {
		t.Fatalf("window cap %d, get(0) %v, len %d", cap(x.win), x.get(0), x.len())
	}
	x.remove(held)
	if x.len() != 0 || x.old != nil {
		t.Fatalf("len %d, old %v", x.len(), x.old)
	}
}
