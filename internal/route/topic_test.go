package route

import (
	"slices"
	"strings"
	"testing"
)

// naiveTopicMatch is the reference matcher: recursive over word lists.
func naiveTopicMatch(pattern, key []string) bool {
	if len(pattern) == 0 {
		return len(key) == 0
	}
	switch pattern[0] {
	case "#":
		for i := 0; i <= len(key); i++ {
			if naiveTopicMatch(pattern[1:], key[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(key) > 0 && naiveTopicMatch(pattern[1:], key[1:])
	}
	return len(key) > 0 && key[0] == pattern[0] && naiveTopicMatch(pattern[1:], key[1:])
}

func topicMatches(pattern, key string) bool {
	t := newTopic([]Binding[int]{{Key: pattern, Dest: 1}})
	return len(t.Route(nil, key, nil)) > 0
}

func TestTopicMatching(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, key string
		want         bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.*.c", "a.b.c", true},
		{"a.*.c", "a.c", false},
		{"a.#", "a", true},
		{"a.#", "a.b.c", true},
		{"#", "", true},
		{"#", "a.b", true},
		{"*", "", true},
		{"*", "a.b", false},
		{"#.c", "c", true},
		{"#.c", "a.b.c", true},
		{"#.c", "a.b.d", false},
		{"a.#.c", "a.c", true},
		{"a.#.c", "a.x.y.c", true},
		{"*.orange.*", "quick.orange.rabbit", true},
		{"*.*.rabbit", "lazy.orange.elephant", false},
		{"lazy.#", "lazy.orange.male.rabbit", true},
		{"a..b", "a..b", true},
		{"#.#", "x", true},
		{"*.#.*", "x", false},
		{"*.#.*", "x.y", true},
	}
	for _, c := range cases {
		if got := topicMatches(c.pattern, c.key); got != c.want {
			t.Errorf("pattern %q key %q: got %v, want %v", c.pattern, c.key, got, c.want)
		}
		if ref := naiveTopicMatch(strings.Split(c.pattern, "."), strings.Split(c.key, ".")); ref != c.want {
			t.Errorf("reference disagrees on %q %q", c.pattern, c.key)
		}
	}
}

func TestTopicManyBindingsDedup(t *testing.T) {
	t.Parallel()
	tb := newTopic([]Binding[int]{{Key: "a.#", Dest: 1}, {Key: "*.b", Dest: 1}, {Key: "a.b", Dest: 2}, {Key: "#", Dest: 3}})
	got := Dedup(tb.Route(nil, "a.b", nil))
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("got %v", got)
	}
}

func FuzzTopicMatch(f *testing.F) {
	f.Add("a.*.#", "a.b.c")
	f.Add("#.x.#", "x")
	f.Add("*.*", "a.")
	f.Fuzz(func(t *testing.T, pattern, key string) {
		if len(pattern) > 64 || len(key) > 64 {
			return
		}
		want := naiveTopicMatch(strings.Split(pattern, "."), strings.Split(key, "."))
		if got := topicMatches(pattern, key); got != want {
			t.Fatalf("pattern %q key %q: trie %v, naive %v", pattern, key, got, want)
		}
	})
}

func TestHeadersMatch(t *testing.T) {
	t.Parallel()
	bs := []Binding[string]{
		{Args: map[string]any{"x-match": "all", "format": "pdf", "type": "report"}, Dest: "all"},
		{Args: map[string]any{"x-match": "any", "format": "pdf", "type": "log"}, Dest: "any"},
		{Args: map[string]any{"x-match": "all-with-x", "x-tenant": "a"}, Dest: "allx"},
		{Args: map[string]any{"x-match": "any", "n": int32(5)}, Dest: "num"},
		{Args: map[string]any{"present": nil}, Dest: "void"},
	}
	tb := newHeaders(bs)
	cases := []struct {
		hdrs map[string]any
		want []string
	}{
		{map[string]any{"format": "pdf", "type": "report"}, []string{"all", "any"}},
		{map[string]any{"format": "pdf"}, []string{"any"}},
		{map[string]any{"x-tenant": "a"}, []string{"allx"}},
		{map[string]any{"n": int64(5)}, []string{"num"}},
		{map[string]any{"present": "whatever"}, []string{"void"}},
		{nil, nil},
	}
	for _, c := range cases {
		got := tb.Route(nil, "", c.hdrs)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("headers %v: got %v, want %v", c.hdrs, got, c.want)
		}
	}
}
