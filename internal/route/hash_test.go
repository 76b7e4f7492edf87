package route

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func spread(t *testing.T, tb Table[string], keys []string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, k := range keys {
		d := tb.Route(nil, k, nil)
		if len(d) != 1 {
			t.Fatalf("key %q routed to %v", k, d)
		}
		got[d[0]]++
	}
	return got
}

// TestConsistentHashBalanceAndMovement checks the figures: 4 equal
// queues get 25% ± 3% of 100k random keys each, and adding a 5th moves
// about a fifth of the keys, never more than a quarter.
func TestConsistentHashBalanceAndMovement(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(42, 7))
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprintf("order-%d", rng.Uint64())
	}
	bind := func(n int) Table[string] {
		var bs []Binding[string]
		for i := 0; i < n; i++ {
			q := fmt.Sprintf("q%d", i)
			bs = append(bs, Binding[string]{Key: "1", Dest: q, Name: q})
		}
		tb, _ := Build(ConsistentHash, bs)
		return tb
	}
	four := bind(4)
	for q, n := range spread(t, four, keys) {
		share := float64(n) / float64(len(keys))
		t.Logf("%s: %.2f%%", q, 100*share)
		if math.Abs(share-0.25) > 0.03 {
			t.Errorf("%s got %.2f%% of the keys, want 25%% ± 3%%", q, 100*share)
		}
	}
	five := bind(5)
	moved := 0
	for _, k := range keys {
		if four.Route(nil, k, nil)[0] != five.Route(nil, k, nil)[0] {
			moved++
		}
	}
	frac := float64(moved) / float64(len(keys))
	t.Logf("adding a 5th queue moved %.2f%% of the keys", 100*frac)
	if frac < 0.15 || frac > 0.25 {
		t.Errorf("adding a 5th queue moved %.2f%% of the keys, want about 20%% and at most 25%%", 100*frac)
	}
	// Weights: a binding with weight 3 gets about three times the keys.
	tb, _ := Build(ConsistentHash, []Binding[string]{{Key: "1", Dest: "a", Name: "a"}, {Key: "3", Dest: "b", Name: "b"}})
	got := spread(t, tb, keys)
	if r := float64(got["b"]) / float64(got["a"]); r < 2.5 || r > 3.5 {
		t.Errorf("weight 3 vs 1 split %d/%d", got["b"], got["a"])
	}
}

func TestConsistentHashIsStable(t *testing.T) {
	t.Parallel()
	tb, _ := Build(ConsistentHash, []Binding[string]{{Key: "1", Dest: "a", Name: "a"}, {Key: "1", Dest: "b", Name: "b"}})
	first := tb.Route(nil, "user-42", nil)[0]
	for i := 0; i < 100; i++ {
		if tb.Route(nil, "user-42", nil)[0] != first {
			t.Fatal("the same key went to another destination")
		}
	}
}

// TestRandomIsUniform checks the x-random exchange with a chi-square test
// over 5 destinations and 50k messages (critical value 18.47 at p = 0.001,
// 4 degrees of freedom).
func TestRandomIsUniform(t *testing.T) {
	t.Parallel()
	var bs []Binding[string]
	for i := 0; i < 5; i++ {
		bs = append(bs, Binding[string]{Dest: fmt.Sprint("q", i)})
	}
	tb, _ := Build(Random, bs)
	const n = 50_000
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[tb.Route(nil, "", nil)[0]]++
	}
	chi := 0.0
	for _, c := range counts {
		e := float64(n) / 5
		chi += (float64(c) - e) * (float64(c) - e) / e
	}
	t.Logf("counts %v, chi-square %.2f", counts, chi)
	if len(counts) != 5 || chi > 18.47 {
		t.Fatalf("not uniform: %v (chi-square %.2f)", counts, chi)
	}
}
