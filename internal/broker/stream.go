package broker

import (
	"slices"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// A stream is a queue kind backed directly by its log: messages are
// appended and stay after acknowledgement; every consumer reads from its
// own offset (the queue's sequence numbers) on its own goroutine, following
// the log's durable end, so a reader never sees a message that was not
// confirmed to its publisher. Retention drops whole segments from the head
// by count (x-max-length), size (x-max-length-bytes) or age (x-max-age).

// StreamOptions are a stream consumer's settings.
type StreamOptions struct {
	// Offset is where to start: "first", "last", "next", an integer offset,
	// or a time.Time (the first message published at or after it). Nil
	// means the named consumer's stored offset + 1, else "next".
	Offset any
	// Filters, when set, deliver only messages whose x-stream-filter-value
	// header is one of them (plus, with MatchUnfiltered, those without one).
	Filters         []string
	MatchUnfiltered bool
	// Name, when set, stores the consumer's acknowledged offset so it can
	// resume after a restart of either side.
	Name string
}

// streamBackend is a stream. mu guards the fields below it; a reader's
// own fields belong to its goroutine. Appends and reads go to the log,
// which has its own lock; readers follow its durable end.
type streamBackend struct {
	q   *Queue
	log StreamLog

	mu        sync.Mutex
	deleted   bool
	readers   map[Consumer]*streamReader
	retainsAt time.Time
}

func newStreamBackend(q *Queue, l StreamLog) *streamBackend {
	s := &streamBackend{q: q, log: l, readers: map[Consumer]*streamReader{}}
	_ = l.Recovered() // a stream keeps no ready list
	l.OnDurable(s.onDurable)
	return s
}

type streamReader struct {
	q      *Queue
	s      *streamBackend
	hashes map[uint32]bool // FilterHash of each filter
	c      Consumer
	next   uint64
	opts   StreamOptions
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

// StreamHeaderOffset is the header carrying a delivery's stream offset.
const StreamHeaderOffset = "x-stream-offset"

// StreamHeaderFilter is the header a publisher sets for stream filtering.
const StreamHeaderFilter = message.HeaderStreamFilter

// FilterHash hashes a stream filter value for the log's index (see
// message.FilterHash).
func FilterHash(v string) uint32 { return message.FilterHash(v) }

func (s *streamBackend) wakeAll() {
	s.mu.Lock()
	for _, r := range s.readers {
		r.poke()
	}
	s.mu.Unlock()
}

func (r *streamReader) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// onDurable runs on the store's commit goroutine: readers may go further,
// and retention is applied at most once a second.
func (s *streamBackend) onDurable() {
	s.wakeAll()
	s.mu.Lock()
	now := s.q.vhost.broker.cfg.Clock.Now()
	due := now.Sub(s.retainsAt) > time.Second
	if due {
		s.retainsAt = now
	}
	s.mu.Unlock()
	if due {
		a := s.q.cur()
		s.log.ApplyRetention(a.maxLength, a.maxBytes, a.maxAge)
	}
}

// publish appends m to the stream; done learns when it is durable.
func (s *streamBackend) publish(m *message.Message, done message.Completion, token uint64) (PublishOutcome, bool) {
	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		return Dropped, false
	}
	_, err := s.log.AppendNext(m, done, token)
	s.mu.Unlock()
	if err != nil {
		// Debug: the store logs once when writes start failing, not per message.
		s.q.vhost.broker.log.Debug("stream refused a message", "stream", s.q.cfg.Name, "err", err)
		return Rejected, false
	}
	return Enqueued, done != nil
}

// startOffset resolves where a new consumer starts.
func (s *streamBackend) startOffset(o StreamOptions) (uint64, error) {
	first, end := s.log.FirstSeq(), s.log.DurableSeq()
	spec := o.Offset
	if spec == nil {
		if o.Name != "" {
			if v, ok := s.log.StoredOffset(o.Name); ok {
				return max(v+1, first), nil
			}
		}
		spec = "next"
	}
	switch v := spec.(type) {
	case string:
		switch v {
		case "first":
			return first, nil
		case "last":
			if end > first {
				return end - 1, nil
			}
			return end, nil
		case "next":
			return end, nil
		}
		// An interval before now, as x-max-age spells it ("1h", "7D"):
		// RabbitMQ's sixth kind of offset.
		if d, err := parseMaxAge(v); err == nil {
			at := s.q.vhost.broker.cfg.Clock.Now().Add(-d)
			return max(s.log.SeqAtTime(at.UnixNano()), first), nil
		}
	case time.Time:
		return max(s.log.SeqAtTime(v.UnixNano()), first), nil
	default:
		if n, ok := argInt(v); ok && n >= 0 {
			return max(uint64(n), first), nil
		}
	}
	return 0, errorf(KindPreconditionFailed, "invalid x-stream-offset %v", spec)
}

// consume starts a reader goroutine for c.
func (s *streamBackend) consume(c Consumer, opts ConsumeOptions) error {
	o := opts.Stream
	start, err := s.startOffset(o)
	if err != nil {
		return err
	}
	r := &streamReader{q: s.q, s: s, c: c, next: start, opts: o, wake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), hashes: map[uint32]bool{}}
	for _, f := range o.Filters {
		r.hashes[FilterHash(f)] = true
	}
	s.mu.Lock()
	s.readers[c] = r
	s.mu.Unlock()
	go r.run()
	return nil
}

func (r *streamReader) accepts(m *message.Message) bool {
	if len(r.opts.Filters) == 0 {
		return true
	}
	v, ok := m.Props.Headers[StreamHeaderFilter].(string)
	if !ok {
		return r.opts.MatchUnfiltered
	}
	return slices.Contains(r.opts.Filters, v)
}

// run delivers from the reader's offset up to the durable end, then waits
// for more data or more credit.
func (r *streamReader) run() {
	defer close(r.done)
	log := r.s.log
	stats := &r.q.vhost.broker.stats
	for {
		end := log.DurableSeq()
		if first := log.FirstSeq(); r.next < first {
			r.next = first // retention went past a slow reader
		}
	deliver:
		for r.next < end {
			select {
			case <-r.stop:
				return
			default:
			}
			if len(r.opts.Filters) > 0 {
				// The index says which messages cannot match: skip them
				// without touching their bodies.
				if h, ok := log.FilterHash(r.next); ok && ((h == 0 && !r.opts.MatchUnfiltered) || (h != 0 && !r.hashes[h])) {
					r.next++
					continue
				}
			}
			m, err := log.Read(r.next)
			if err != nil {
				if first := log.FirstSeq(); r.next < first {
					r.next = first
				} else {
					r.next++ // unreadable (torn on disk): skipped, not retried forever
				}
				continue
			}
			if !r.accepts(m) {
				r.next++
				continue
			}
			d := Delivery{Queue: r.q, Msg: withStreamOffset(m, r.next), Seq: r.next, streamName: r.opts.Name}
			switch r.c.TryDeliver(d) {
			case Refuse:
				break deliver
			default:
				stats.delivered.Add(1)
				r.q.countDelivered(false)
				r.next++
			}
		}
		select {
		case <-r.wake:
		case <-r.stop:
			return
		}
	}
}

// withStreamOffset returns a copy of m carrying its offset in a header.
func withStreamOffset(m *message.Message, offset uint64) *message.Message {
	c := *m
	h := make(map[string]any, len(m.Props.Headers)+1)
	for k, v := range m.Props.Headers {
		h[k] = v
	}
	h[StreamHeaderOffset] = int64(offset)
	c.Props.Headers = h
	c.WireProps = nil
	return &c
}

// ack records acknowledged offsets of named consumers and gives credit
// back to the readers.
func (s *streamBackend) ack(ds []Delivery) {
	hi := map[string]uint64{}
	for _, d := range ds {
		if d.streamName != "" && d.Seq >= hi[d.streamName] {
			hi[d.streamName] = d.Seq
		}
	}
	for name, off := range hi {
		s.log.StoreOffset(name, off)
	}
	s.wakeAll()
}

func (s *streamBackend) cancel(c Consumer) {
	s.mu.Lock()
	r := s.readers[c]
	delete(s.readers, c)
	s.mu.Unlock()
	if r != nil {
		close(r.stop)
		<-r.done
	}
}

// close stops every reader and refuses further appends.
func (s *streamBackend) close(ifUnused, _ bool) (int, []Consumer, error) {
	s.mu.Lock()
	if ifUnused && len(s.readers) > 0 {
		s.mu.Unlock()
		return 0, nil, errorf(KindPreconditionFailed, "queue '%s' in vhost '%s' in use", s.q.cfg.Name, s.q.vhost.name)
	}
	s.deleted = true
	readers := s.readers
	s.readers = map[Consumer]*streamReader{}
	s.mu.Unlock()
	var cs []Consumer
	for c, r := range readers {
		close(r.stop)
		<-r.done
		cs = append(cs, c)
	}
	return 0, cs, nil
}

// Nothing goes back into a stream: requeue, reject and dispatch give the
// readers their credit back.
func (s *streamBackend) requeue([]Delivery, bool) { s.wakeAll() }
func (s *streamBackend) reject([]Delivery)        { s.wakeAll() }
func (s *streamBackend) dispatch()                { s.wakeAll() }

// get: a stream is read by consumers with an offset, not basic.get.
func (s *streamBackend) get(bool) (Delivery, bool) { return Delivery{}, false }

// purge: a stream's history stays; retention trims it.
func (s *streamBackend) purge() int { return 0 }

// counts: ready is the number of messages the stream holds.
func (s *streamBackend) counts() (ready, unacked, consumers int) {
	s.mu.Lock()
	n := len(s.readers)
	s.mu.Unlock()
	return int(s.log.DurableSeq() - s.log.FirstSeq()), 0, n
}

func (s *streamBackend) readyBytes() int64 { return 0 }
func (s *streamBackend) touch()            {}
func (s *streamBackend) restore() int      { return 0 }
