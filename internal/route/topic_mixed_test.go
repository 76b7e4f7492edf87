package route

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A table mixing exact keys (the map) and wildcard keys (the trie), with
// keys bound by several destinations and destinations bound by several
// keys, routes every key to what the reference matcher says.
func TestTopicExactAndWildcardKeysAgree(t *testing.T) {
	t.Parallel()
	words := []string{"a", "b", "", "*", "#", "a*", "#b"}
	rng := rand.New(rand.NewPCG(7, 16))
	randomKey := func(wildcards bool) string {
		n := 1 + rng.IntN(4)
		ws := make([]string, n)
		for i := range ws {
			for {
				ws[i] = words[rng.IntN(len(words))]
				if wildcards || (ws[i] != "*" && ws[i] != "#") {
					break
				}
			}
		}
		return strings.Join(ws, ".")
	}
	for round := range 50 {
		var bs []Binding[int]
		for i := range 40 {
			bs = append(bs, Binding[int]{Key: randomKey(true), Dest: rng.IntN(20)})
			if i%5 == 0 {
				bs = append(bs, bs[len(bs)-1]) // the same binding twice
			}
		}
		tb := newTopic(bs)
		for range 100 {
			key := randomKey(false)
			var want []int
			for _, b := range bs {
				if naiveTopicMatch(strings.Split(b.Key, "."), strings.Split(key, ".")) && !slices.Contains(want, b.Dest) {
					want = append(want, b.Dest)
				}
			}
			got := Dedup(tb.Route(nil, key, nil))
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, key %q: got %v, want %v (bindings %v)", round, key, got, want, bs)
			}
		}
	}
}

// An exact key is routed once per destination however often it is bound,
// without the caller's Dedup.
func TestTopicExactKeyDeduplicated(t *testing.T) {
	t.Parallel()
	tb := newTopic([]Binding[int]{{Key: "d.1.cmd", Dest: 1}, {Key: "d.1.cmd", Dest: 1}, {Key: "d.1.cmd", Dest: 2}, {Key: "d.2.cmd", Dest: 1}})
	if got := tb.Route(nil, "d.1.cmd", nil); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("got %v, want [1 2]", got)
	}
	if got := tb.Route(nil, "d.3.cmd", nil); len(got) != 0 {
		t.Fatalf("got %v for an unbound key", got)
	}
}

func TestHasWildcard(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{"": false, "a.b": false, "a*.b": false, "#b": false, "*": true, "#": true, "a.*": true, "#.a": true, "a.#.b": true, "a..b": false} {
		if got := hasWildcard(key); got != want {
			t.Errorf("hasWildcard(%q) = %v, want %v", key, got, want)
		}
	}
}

// FuzzTopicTable checks a table of several bindings (split at '|', each
// bound to one of three destinations, so keys share destinations and
// destinations share keys) against the reference matcher.
func FuzzTopicTable(f *testing.F) {
	f.Add("a.b|a.b|a.*|#", "a.b")
	f.Add("d.1.cmd|d.1.cmd|d.2.cmd|d.*.cmd", "d.1.cmd")
	f.Add("|*|#.", "")
	f.Fuzz(func(t *testing.T, patterns, key string) {
		if len(patterns) > 128 || len(key) > 64 {
			return
		}
		var bs []Binding[int]
		for i, p := range strings.Split(patterns, "|") {
			bs = append(bs, Binding[int]{Key: p, Dest: i % 3})
		}
		var want []int
		for _, b := range bs {
			if naiveTopicMatch(strings.Split(b.Key, "."), strings.Split(key, ".")) && !slices.Contains(want, b.Dest) {
				want = append(want, b.Dest)
			}
		}
		got := Dedup(newTopic(bs).Route(nil, key, nil))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("bindings %q, key %q: got %v, want %v", patterns, key, got, want)
		}
	})
}
