package accept

import "sync"

// Conns tracks a server's live connections and their goroutines, so
// shutdown can reach every connection and wait for all of them.
type Conns[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
	wg sync.WaitGroup
}

// Go registers c and runs serve on a new goroutine; c is forgotten when
// serve returns.
func (r *Conns[T]) Go(c T, serve func()) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[T]struct{}{}
	}
	r.m[c] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		serve()
		r.mu.Lock()
		delete(r.m, c)
		r.mu.Unlock()
	}()
}

// Add registers c, served without a goroutine of its own (an event
// loop): Done must follow when it ends.
func (r *Conns[T]) Add(c T) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[T]struct{}{}
	}
	r.m[c] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
}

// Done forgets c, registered by Add.
func (r *Conns[T]) Done(c T) {
	r.mu.Lock()
	delete(r.m, c)
	r.mu.Unlock()
	r.wg.Done()
}

// Live returns the connections being served now.
func (r *Conns[T]) Live() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, 0, len(r.m))
	for c := range r.m {
		out = append(out, c)
	}
	return out
}

// Wait blocks until every connection's goroutine has returned.
func (r *Conns[T]) Wait() { r.wg.Wait() }
