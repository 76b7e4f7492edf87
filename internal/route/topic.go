package route

import "strings"

// topic routes by binding keys of dot-separated words, `*` matching exactly
// one word and `#` zero or more, as in RabbitMQ's topic exchange.
//
// A key without wildcard words matches exactly one routing key (itself),
// so those bindings are maps from key to destinations: a lookup per
// message and about 65 bytes per key (a 32-byte slot and the map's free
// ones). An MQTT fleet is mostly such keys (each device subscribing to its
// own devices/ID/cmd), and a trie held a node, a word map and a leaf per
// device, about 400 bytes each. The keys with wildcards are a trie over
// their words.
type topic[D comparable] struct {
	exact map[string]D   // wildcard-free keys bound to one destination
	multi map[string][]D // those bound to several, not in exact
	root  *topicNode[D]  // nil: no binding has a wildcard
}

type topicNode[D comparable] struct {
	words map[string]*topicNode[D]
	star  *topicNode[D]
	hash  *topicNode[D]
	dests []D
}

func newTopic[D comparable](bs []Binding[D]) topic[D] {
	var t topic[D]
	// Destinations are deduplicated through a set per build, not by
	// scanning the node's list: thousands of queues bound with one key
	// (an MQTT fleet subscribing to one topic) made every build quadratic.
	type nodeDest struct {
		n *topicNode[D]
		d D
	}
	var seen map[nodeDest]struct{}
	var seenExact map[keyDest[D]]struct{}
	// Sized for them up front, so a build of a fleet's table does not
	// grow it (and rehash) step by step.
	exact := 0
	for _, b := range bs {
		if !hasWildcard(b.Key) {
			exact++
		}
	}
	if exact > 0 {
		t.exact = make(map[string]D, exact)
	}
	for _, b := range bs {
		if !hasWildcard(b.Key) {
			t.addExact(b.Key, b.Dest, &seenExact)
			continue
		}
		if t.root == nil {
			t.root = &topicNode[D]{}
			seen = map[nodeDest]struct{}{}
		}
		n := t.root
		for w := range strings.SplitSeq(b.Key, ".") {
			n = n.child(w)
		}
		if _, dup := seen[nodeDest{n, b.Dest}]; !dup {
			seen[nodeDest{n, b.Dest}] = struct{}{}
			n.dests = append(n.dests, b.Dest)
		}
	}
	return t
}

type keyDest[D comparable] struct {
	k string
	d D
}

// addExact binds the wildcard-free key k to d. A key's second destination
// moves it from exact to multi; seen (made here) deduplicates those.
func (t *topic[D]) addExact(k string, d D, seen *map[keyDest[D]]struct{}) {
	if ds, ok := t.multi[k]; ok {
		if _, dup := (*seen)[keyDest[D]{k, d}]; !dup {
			(*seen)[keyDest[D]{k, d}] = struct{}{}
			t.multi[k] = append(ds, d)
		}
		return
	}
	first, ok := t.exact[k]
	switch {
	case !ok:
		if t.exact == nil {
			t.exact = map[string]D{}
		}
		t.exact[k] = d
	case first != d:
		if t.multi == nil {
			t.multi = map[string][]D{}
			*seen = map[keyDest[D]]struct{}{}
		}
		delete(t.exact, k)
		t.multi[k] = []D{first, d}
		(*seen)[keyDest[D]{k, first}] = struct{}{}
		(*seen)[keyDest[D]{k, d}] = struct{}{}
	}
}

// hasWildcard reports whether a binding key has a `*` or `#` word (a word
// that merely contains one, like "a*b", is literal).
func hasWildcard(key string) bool {
	for rest, done := key, false; !done; {
		var w string
		w, rest, done = nextWord(rest)
		if w == "*" || w == "#" {
			return true
		}
	}
	return false
}

func (n *topicNode[D]) child(w string) *topicNode[D] {
	switch w {
	case "*":
		if n.star == nil {
			n.star = &topicNode[D]{}
		}
		return n.star
	case "#":
		if n.hash == nil {
			n.hash = &topicNode[D]{}
		}
		return n.hash
	}
	if n.words == nil {
		n.words = map[string]*topicNode[D]{}
	}
	c := n.words[w]
	if c == nil {
		c = &topicNode[D]{}
		n.words[w] = c
	}
	return c
}

func (t topic[D]) Route(dst []D, key string, _ map[string]any) []D {
	if d, ok := t.exact[key]; ok {
		dst = append(dst, d)
	} else if len(t.multi) > 0 {
		dst = append(dst, t.multi[key]...)
	}
	if t.root == nil {
		return dst
	}
	return t.root.match(dst, key, false)
}

// match walks the trie with the rest of the routing key. done means every
// word has been consumed (the key "" is one empty word, so done is explicit).
func (n *topicNode[D]) match(dst []D, rest string, done bool) []D {
	if n.hash != nil {
		// `#` swallows zero words here, or one more word and stays.
		dst = n.hash.match(dst, rest, done)
		if !done {
			r, d := rest, false
			for !d {
				_, r, d = nextWord(r)
				dst = n.hash.match(dst, r, d)
			}
		}
	}
	if done {
		return append(dst, n.dests...)
	}
	w, r, d := nextWord(rest)
	if c := n.words[w]; c != nil {
		dst = c.match(dst, r, d)
	}
	if n.star != nil {
		dst = n.star.match(dst, r, d)
	}
	return dst
}

// nextWord splits off the first word; done reports that it was the last.
func nextWord(s string) (word, rest string, done bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:], false
	}
	return s, "", true
}
