package bench

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latencies records microseconds from 1 µs to 5 minutes with 3
// significant digits (an HDR histogram): one for the whole run and one
// reset every second for the live view and the timeline.
type latencies struct {
	mu     sync.Mutex
	total  *hdrhistogram.Histogram
	window *hdrhistogram.Histogram
}

func newLatencies() *latencies {
	return &latencies{
		total:  hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3),
		window: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3),
	}
}

func (l *latencies) record(d time.Duration) {
	us := max(int64(d/time.Microsecond), 1)
	l.mu.Lock()
	_ = l.total.RecordValue(us)
	_ = l.window.RecordValue(us)
	l.mu.Unlock()
}

// takeWindow returns the last second's p50 and p99 and starts a new window.
func (l *latencies) takeWindow() (p50, p99 time.Duration, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = l.window.TotalCount()
	p50 = time.Duration(l.window.ValueAtQuantile(50)) * time.Microsecond
	p99 = time.Duration(l.window.ValueAtQuantile(99)) * time.Microsecond
	l.window.Reset()
	return p50, p99, n
}

// Percentiles is a latency summary.
type Percentiles struct {
	P50, P90, P99, P999, Max time.Duration
	Count                    int64
}

func (l *latencies) summary() Percentiles {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := func(p float64) time.Duration { return time.Duration(l.total.ValueAtQuantile(p)) * time.Microsecond }
	return Percentiles{P50: q(50), P90: q(90), P99: q(99), P999: q(99.9),
		Max: time.Duration(l.total.Max()) * time.Microsecond, Count: l.total.TotalCount()}
}

// counters are the run's totals.
type counters struct {
	sent, confirmed, nacked, returned, received atomic.Int64
	redelivered                                 atomic.Int64
	sentBytes                                   atomic.Int64
}

// tracker checks each (queue, producer) stream's sequence numbers:
// duplicates are seqs seen twice; reordered are seqs below one already seen
// (counted only where a queue has a single consumer, since competing
// consumers interleave legitimately).
type tracker struct {
	mu        sync.Mutex
	streams   map[streamKey]*stream
	dups      int64
	reordered int64
	unique    int64
}

type streamKey struct {
	queue    int
	producer uint32
}

type stream struct {
	seen    []uint64 // bitset by seq
	highest uint64
	any     bool
}

func newTracker() *tracker { return &tracker{streams: map[streamKey]*stream{}} }

func (t *tracker) observe(queue int, producer uint32, seq uint64, checkOrder bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := streamKey{queue, producer}
	s := t.streams[k]
	if s == nil {
		s = &stream{}
		t.streams[k] = s
	}
	for uint64(len(s.seen))*64 <= seq {
		s.seen = append(s.seen, 0)
	}
	if s.seen[seq/64]&(1<<(seq%64)) != 0 {
		t.dups++
		return
	}
	s.seen[seq/64] |= 1 << (seq % 64)
	t.unique++
	if s.any && seq < s.highest && checkOrder {
		t.reordered++
	}
	if !s.any || seq > s.highest {
		s.highest, s.any = seq, true
	}
}

// Sample is one second of the run.
type Sample struct {
	At                                time.Duration // since the start
	SentRate, ConfirmedRate, RecvRate float64       // messages/s
	InFlight                          int64         // sent, not yet confirmed (or received without confirms)
	P50, P99                          time.Duration // end-to-end latency of the messages received in that second
}
