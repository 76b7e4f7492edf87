package broker

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestDequeInsertSortedKeepsOrderAcrossWraparound(t *testing.T) {
	t.Parallel()
	var d deque
	var want []uint64
	rng := rand.New(rand.NewPCG(1, 2))
	// Push, pop and insert at random so the ring wraps many times.
	next := uint64(1000)
	for i := 0; i < 5000; i++ {
		switch rng.IntN(3) {
		case 0:
			next++
			d.pushBack(entry{seq: next})
			want = append(want, next)
		case 1:
			if d.len() > 0 {
				if got := d.popFront().seq; got != want[0] {
					t.Fatalf("pop %d, want %d", got, want[0])
				}
				want = want[1:]
			}
		case 2:
			s := uint64(rng.IntN(int(next) + 10))
			if _, found := slices.BinarySearch(want, s); found {
				continue
			}
			d.insertSorted(entry{seq: s})
			i, _ := slices.BinarySearch(want, s)
			want = slices.Insert(want, i, s)
		}
		if d.len() != len(want) {
			t.Fatalf("len %d, want %d", d.len(), len(want))
		}
	}
	for i, w := range want {
		if d.at(i).seq != w {
			t.Fatalf("position %d holds %d, want %d", i, d.at(i).seq, w)
		}
	}
}
