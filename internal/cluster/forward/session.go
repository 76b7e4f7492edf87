package forward

import (
	"slices"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// session is, on a queue's node (the owner), what one client node (one
// run of it: its epoch) has here: its consumers, each a proxy registered
// on a local queue, and its unsettled basic.get deliveries. It lives as
// long as the client node keeps it alive (any request of that epoch);
// when it ends — lease expired, a new epoch, a delivery the transport
// could not take — every proxy is cancelled and everything it held is
// requeued, as a closed connection's would be.
type session struct {
	f     *Forwarder
	node  uint64
	epoch uint64

	mu       sync.Mutex
	lastSeen time.Time
	proxies  map[uint64]*proxy
	// cancelled are consumer ids cancelled (or aborted) before their
	// consume was served, and get ids given back before the get was:
	// requests run concurrently, so a consume and its cancel, sent in
	// that order, can be handled in the other. A later consume or get of
	// such an id is refused; without this a consume would register a
	// proxy nobody cancels, whose deliveries come back requeued forever,
	// and a get would hold a message nobody settles.
	cancelled map[uint64]struct{}
	tombs     []uint64 // cancelled's ids, oldest first, at most maxTombs
	gets      map[uint64]broker.Delivery
	out       []pushItem // deliveries to push, in order
	spare     []pushItem
	flushing  bool
	ended     bool
}

type pushItem struct {
	p  *proxy
	id uint64
	d  broker.Delivery
}

// Ways of sessionFor with a session missing or of another epoch.
const (
	sessionFind   = iota // none: return nil
	sessionCreate        // make one, ending one of another epoch
	sessionIfNone        // make one only if the node has none
)

// sessionFor returns from's session for epoch. With sessionCreate, a
// missing one is made and one of another epoch ended (the client node
// restarted: only a consume or a get starts a session); with sessionFind,
// a request of another epoch finds none — a late request of a node's
// earlier run must not end the session of its current one; sessionIfNone
// (a cancel, which records its consumer's tombstone) makes one only where
// the node has none.
func (f *Forwarder) sessionFor(from, epoch uint64, mode int) *session {
	now := f.cfg.Clock.Now()
	f.mu.Lock()
	s := f.sessions[from]
	var old *session
	if s != nil && s.epoch != epoch {
		if mode != sessionCreate {
			f.mu.Unlock()
			return nil
		}
		old, s = s, nil
		delete(f.sessions, from)
	}
	if s == nil && mode != sessionFind && !f.closed {
		s = &session{f: f, node: from, epoch: epoch, lastSeen: now, proxies: map[uint64]*proxy{}, gets: map[uint64]broker.Delivery{}}
		f.sessions[from] = s
	}
	f.mu.Unlock()
	if old != nil {
		old.end("the node restarted")
	}
	if s != nil {
		s.mu.Lock()
		s.lastSeen = now
		s.mu.Unlock()
	}
	return s
}

func (s *session) expired(now time.Time, lease time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return now.Sub(s.lastSeen) > lease
}

// end cancels every proxy and requeues everything the session held.
func (s *session) end(why string) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.f.stats.sessionsEnded.Add(1)
	proxies := make([]*proxy, 0, len(s.proxies))
	for _, p := range s.proxies {
		proxies = append(proxies, p)
	}
	gets := s.gets
	s.proxies, s.gets, s.out = map[uint64]*proxy{}, map[uint64]broker.Delivery{}, nil
	s.mu.Unlock()
	f := s.f
	n := 0
	for _, p := range proxies {
		n += p.stop(true)
	}
	n += requeueByQueue(sortedDeliveries(gets))
	if len(proxies) > 0 || n > 0 {
		f.log.Info("cluster forward: a node's consumers ended; their unacked messages are requeued",
			"node", s.node, "reason", why, "consumers", len(proxies), "requeued", n)
	}
}

// maxTombs bounds a session's tombstones; the oldest go first (a consume
// that arrives that many cancels late is not expected).
const maxTombs = 4096

// tombLocked records that consumer id was cancelled before its consume
// was served. s.mu is held.
func (s *session) tombLocked(id uint64) {
	if _, ok := s.cancelled[id]; ok {
		return
	}
	if s.cancelled == nil {
		s.cancelled = map[uint64]struct{}{}
	}
	if len(s.tombs) == maxTombs {
		delete(s.cancelled, s.tombs[0])
		s.tombs = s.tombs[1:]
	}
	s.cancelled[id] = struct{}{}
	s.tombs = append(s.tombs, id)
}

// removeProxy forgets p once it is cancelled and holds nothing.
func (s *session) removeProxy(p *proxy) {
	s.mu.Lock()
	if s.proxies[p.id] == p {
		delete(s.proxies, p.id)
	}
	s.mu.Unlock()
}

// push queues a delivery for the client node; called with the proxy's
// lock held (from TryDeliver, the queue's too), so it only appends.
func (s *session) push(it pushItem) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return // end requeues what the proxy holds
	}
	s.out = append(s.out, it)
	start := !s.flushing
	s.flushing = true
	s.mu.Unlock()
	if start {
		go s.flush()
	}
}

// maxNotify bounds one deliver notify's body; more goes in the next.
const maxNotify = 1 << 20

// flush sends queued deliveries as notifies until none are left. A
// notify the transport refuses (no connection, its queue full, a test
// network's drop) is a loss like any other: its ids count as handed out,
// so the client node's next keepalive finds them missing and gives them
// back. Requeueing them here at once would only push them again into the
// same refusal, as fast as the queue can deliver; the keepalive paces it.
func (s *session) flush() {
	f := s.f
	var rec []byte // one record at a time, copied into the notify
	for {
		s.mu.Lock()
		if len(s.out) == 0 || s.ended {
			s.flushing = false
			s.out = nil
			s.mu.Unlock()
			return
		}
		items := s.out
		s.out = s.spare[:0]
		s.mu.Unlock()
		for start := 0; start < len(items); {
			body := appendUvarint(make([]byte, 0, 4096), s.epoch) // not reused: the transport may keep it
			end := start
			for end < len(items) && (end == start || len(body) < maxNotify) {
				it := &items[end]
				rec = message.AppendMessage(rec[:0], it.d.Msg)
				d := delivery{Consumer: it.p.id, ID: it.id, Redelivered: it.d.Redelivered, Remaining: uint64(max(it.d.Remaining, 0)), Rec: rec}
				body = appendDelivery(body, &d)
				end++
			}
			err := f.tr.Notify(s.node, KindDeliver, body)
			f.stats.delivPushed.Add(uint64(end - start))
			for _, it := range items[start:end] {
				it.p.notified(it.id)
			}
			if err != nil {
				f.stats.notifyRefused.Add(1)
				f.log.Debug("cluster forward: deliveries refused by the transport; the client node's keepalive returns them",
					"node", s.node, "n", end-start, "err", err)
			}
			start = end
		}
		clear(items)
		s.mu.Lock()
		s.spare = items[:0]
		s.mu.Unlock()
	}
}

func sortedDeliveries(m map[uint64]broker.Delivery) []broker.Delivery {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	ds := make([]broker.Delivery, len(ids))
	for i, id := range ids {
		ds[i] = m[id]
	}
	return ds
}

// requeueByQueue requeues ds (in order), one call per queue, and returns
// how many there were.
func requeueByQueue(ds []broker.Delivery) int {
	settleByQueue(ds, func(q *broker.Queue, run []broker.Delivery) { q.Requeue(run) })
	return len(ds)
}

func settleByQueue(ds []broker.Delivery, fn func(q *broker.Queue, run []broker.Delivery)) {
	for start := 0; start < len(ds); {
		end := start + 1
		for end < len(ds) && ds[end].Queue == ds[start].Queue {
			end++
		}
		fn(ds[start].Queue, ds[start:end])
		start = end
	}
}
