package cluster

import (
	"slices"
	"sync"
	"testing"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram(1, 10, 100)
	var wg sync.WaitGroup
	for _, v := range []float64{0.5, 1, 5, 50, 500, 7} {
		wg.Add(1)
		go func() { defer wg.Done(); h.Observe(v) }()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 6 || s.Sum != 563.5 || !slices.Equal(s.Cumulative, []uint64{2, 4, 5}) {
		t.Fatalf("%+v", s)
	}
}
