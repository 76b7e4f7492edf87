package route

import (
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
)

// Kinds beyond AMQP's four, as RabbitMQ's plugins name them.
const (
	// ConsistentHash routes each message to one destination chosen by
	// hashing its routing key (or a header or property) onto a ring where
	// every binding owns weight × VirtualNodes points; the binding key is
	// the weight. The same key always reaches the same destination, and a
	// new binding takes over only its share of the keys.
	ConsistentHash Kind = "x-consistent-hash"
	// Random routes each message to one destination chosen uniformly.
	Random Kind = "x-random"
)

// VirtualNodes is how many ring points one unit of weight owns; more points
// give a more even split.
const VirtualNodes = 1000

type ringPoint[D comparable] struct {
	hash uint64
	dest D
}

// hashRing is a consistent-hash ring. HashKey picks what is hashed.
type hashRing[D comparable] struct {
	points []ringPoint[D]
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	// fnv's low bits mix poorly for short similar strings; finish with a
	// 64-bit mixer (splitmix64's) so points spread over the ring.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func newHashRing[D comparable](bs []Binding[D]) hashRing[D] {
	var r hashRing[D]
	for _, b := range bs {
		w, err := strconv.Atoi(b.Key)
		if err != nil || w <= 0 {
			continue // the plugin ignores bindings whose key is not a positive weight
		}
		for i := 0; i < w*VirtualNodes; i++ {
			r.points = append(r.points, ringPoint[D]{hash: hash64(b.Name + "\x00" + strconv.Itoa(i)), dest: b.Dest})
		}
	}
	sort.Slice(r.points, func(i, j int) bool { return r.points[i].hash < r.points[j].hash })
	return r
}

// Route implements Table; key is the value to hash (the exchange passes
// the routing key, a header or a property, per its arguments).
func (r hashRing[D]) Route(dst []D, key string, _ map[string]any) []D {
	if len(r.points) == 0 {
		return dst
	}
	h := hash64(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	if i == len(r.points) {
		i = 0
	}
	return append(dst, r.points[i].dest)
}

type random[D comparable] []D

func newRandom[D comparable](bs []Binding[D]) random[D] {
	var r random[D]
	for _, b := range bs {
		r = appendUnique(r, b.Dest)
	}
	return r
}

func (r random[D]) Route(dst []D, _ string, _ map[string]any) []D {
	if len(r) == 0 {
		return dst
	}
	return append(dst, r[rand.IntN(len(r))])
}
