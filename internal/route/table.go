package route

import "fmt"

// Binding connects a routing key (and, for headers exchanges, arguments) to a
// destination.
type Binding[D comparable] struct {
	Key  string
	Args map[string]any
	Dest D
	// Name identifies the destination stably (a queue's or exchange's
	// name); consistent hashing places its ring points by it.
	Name string
}

// Table routes a message to destinations. Route appends the matches to dst
// (possibly with duplicates, which the caller removes) and returns it.
type Table[D comparable] interface {
	Route(dst []D, key string, headers map[string]any) []D
}

// Kind names a routing algorithm.
type Kind string

// The routing algorithms.
const (
	Direct  Kind = "direct"
	Fanout  Kind = "fanout"
	Topic   Kind = "topic"
	Headers Kind = "headers"
)

// Build returns an immutable table of kind over bindings.
func Build[D comparable](kind Kind, bindings []Binding[D]) (Table[D], error) {
	switch kind {
	case Direct:
		return newDirect(bindings), nil
	case Fanout:
		return newFanout(bindings), nil
	case Topic:
		return newTopic(bindings), nil
	case Headers:
		return newHeaders(bindings), nil
	case ConsistentHash:
		return newHashRing(bindings), nil
	case Random:
		return newRandom(bindings), nil
	}
	return nil, fmt.Errorf("route: unknown kind %q", kind)
}

type direct[D comparable] map[string][]D

func newDirect[D comparable](bs []Binding[D]) direct[D] {
	t := direct[D]{}
	for _, b := range bs {
		t[b.Key] = appendUnique(t[b.Key], b.Dest)
	}
	return t
}

func (t direct[D]) Route(dst []D, key string, _ map[string]any) []D {
	return append(dst, t[key]...)
}

type fanout[D comparable] []D

func newFanout[D comparable](bs []Binding[D]) fanout[D] {
	var t fanout[D]
	for _, b := range bs {
		t = appendUnique(t, b.Dest)
	}
	return t
}

func (t fanout[D]) Route(dst []D, _ string, _ map[string]any) []D { return append(dst, t...) }

func appendUnique[D comparable](s []D, d D) []D {
	for _, x := range s {
		if x == d {
			return s
		}
	}
	return append(s, d)
}

// Dedup removes repeated destinations in place, keeping first occurrences in
// order. It is quadratic, which beats a map for the handful of destinations a
// message usually has; past 32 it switches to a map.
func Dedup[D comparable](s []D) []D {
	if len(s) < 2 {
		return s
	}
	if len(s) > 32 {
		seen := make(map[D]struct{}, len(s))
		out := s[:0]
		for _, d := range s {
			if _, ok := seen[d]; !ok {
				seen[d] = struct{}{}
				out = append(out, d)
			}
		}
		return out
	}
	out := s[:1]
	for _, d := range s[1:] {
		dup := false
		for _, x := range out {
			if x == d {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, d)
		}
	}
	return out
}
