package broker

import "sync"

// queueMap is a vhost's queues by name, read without the vhost's lock
// (publishing through the default exchange looks the queue up by name).
// It was a sync.Map, whose entry cost about 126 bytes per queue (the
// boxed key, an entry node and its share of the hash-trie's nodes); a
// map's slot costs about 40 (an offline MQTT session is a queue).
type queueMap struct {
	mu sync.RWMutex
	m  map[string]*Queue
}

func (qm *queueMap) load(name string) *Queue {
	qm.mu.RLock()
	q := qm.m[name]
	qm.mu.RUnlock()
	return q
}

func (qm *queueMap) store(name string, q *Queue) {
	qm.mu.Lock()
	if qm.m == nil {
		qm.m = map[string]*Queue{}
	}
	qm.m[name] = q
	qm.mu.Unlock()
}

func (qm *queueMap) delete(name string) {
	qm.mu.Lock()
	delete(qm.m, name)
	qm.mu.Unlock()
}

// all returns the queues as of now, in no order; the caller may change
// the map while it goes through them.
func (qm *queueMap) all() []*Queue {
	qm.mu.RLock()
	defer qm.mu.RUnlock()
	out := make([]*Queue, 0, len(qm.m))
	for _, q := range qm.m {
		out = append(out, q)
	}
	return out
}
