package mgmt

import (
	"slices"
	"strings"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
)

// queueIndex keeps each vhost's queues sorted by name until the vhost's
// queue generation moves (a queue added or removed), so listing 10,000
// queues does not range over the vhost's map and sort 10,000 names on
// every request — about 6 ms of CPU each, for a page of 100.
type queueIndex struct {
	mu     sync.Mutex
	sorted map[*broker.VHost]sortedQueues
}

type sortedQueues struct {
	gen uint64
	qs  []*broker.Queue // shared: never modified once stored
}

// queues returns v's queues sorted by name. The slice is shared by every
// caller: read it, do not modify it.
func (ix *queueIndex) queues(v *broker.VHost) []*broker.Queue {
	gen := v.QueueGeneration() // before Queues: a change in between shows next time
	ix.mu.Lock()
	if c, ok := ix.sorted[v]; ok && c.gen == gen {
		ix.mu.Unlock()
		return c.qs
	}
	ix.mu.Unlock()
	qs := v.Queues()
	slices.SortFunc(qs, func(a, b *broker.Queue) int { return strings.Compare(a.Name(), b.Name()) })
	ix.mu.Lock()
	if ix.sorted == nil {
		ix.sorted = map[*broker.VHost]sortedQueues{}
	}
	if c, ok := ix.sorted[v]; !ok || c.gen <= gen {
		ix.sorted[v] = sortedQueues{gen, qs}
	}
	ix.mu.Unlock()
	return qs
}

// prune forgets the vhosts that are gone.
func (ix *queueIndex) prune(live []*broker.VHost) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for v := range ix.sorted {
		if !slices.Contains(live, v) {
			delete(ix.sorted, v)
		}
	}
}
