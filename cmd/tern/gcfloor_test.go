package main

import "testing"

// GOGC lets a small live heap grow by gcFloor before the next collection,
// never below Go's default of 100 and never so high that the runtime's
// minimum heap (4 MiB × GOGC/100) passes gcFloor.
func TestGCPercentForKeepsTheFloor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 800},
		{1 << 20, 800},  // capped: 4 MiB × 8 = the floor
		{4 << 20, 800},  // 4 MiB + 800 % = 36 MiB
		{8 << 20, 400},  // 8 MiB + 32 MiB
		{16 << 20, 200}, // 16 MiB + 32 MiB
		{32 << 20, 100}, // the default from here on
		{1 << 30, 100},
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}
