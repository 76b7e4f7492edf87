package mgmt

import (
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/broker"
)

// Rates: RabbitMQ shows each counter with a *_details.rate, the change per
// second. A sampler reads the counters once a second (the broker's
// atomics, each connection's byte counts, and the totals of the queues
// whose counts moved, each under its own lock) and keeps the last rate of
// each. An API request only reads the last sample, so a GET costs the
// same with one queue or a busy one. Without a ticker (Sources.API.Done
// nil) a request takes a sample itself when the last is a second old.
//
// Queues: a fleet's MQTT sessions are tens of thousands of queues, nearly
// all idle, and reading each one every second cost 5-6% of the broker's
// CPU in a connect storm. The sampler reads only the queues the broker
// says moved since its last read (broker.TakeActiveQueues: a classic
// queue notes its first change after a read, under the lock it holds),
// those whose rates were not zero at the last sample (they fall to zero
// now) and the queues that do not note their changes (quorum queues,
// streams, other nodes' queues: RateNoted), so a sample costs what moved,
// not what exists. A queue's last counts stay in its entry (its rates are
// deltas against them), for the queues used at least once; the node's
// ready and unacked gauges are the sum of those entries' counts, kept as
// they change.

// rateInterval is how often the counters are sampled.
const rateInterval = time.Second

// counterRate is one counter's last value and its rate over the last
// interval.
type counterRate struct {
	prev uint64
	rate float64
}

func (c *counterRate) update(v uint64, dt float64, first bool) {
	if !first && dt > 0 && v >= c.prev {
		c.rate = float64(v-c.prev) / dt
	} else {
		c.rate = 0
	}
	c.prev = v
}

// gaugeRate is a gauge's rate of change (negative while it shrinks).
type gaugeRate struct {
	prev int
	rate float64
}

func (g *gaugeRate) update(v int, dt float64, first bool) {
	if !first && dt > 0 {
		g.rate = float64(v-g.prev) / dt
	} else {
		g.rate = 0
	}
	g.prev = v
}

// queueRates are one queue's rates.
type queueRates struct {
	publish, deliver, ack, redeliver counterRate
	messages, ready, unacked         gaugeRate
	seen                             uint64 // the sample that last saw it
	q                                *broker.Queue
}

// moving says a rate is not zero, or the queue does not note its changes:
// the next sample reads it again.
func (q *queueRates) moving() bool {
	return !q.q.RateNoted() || q.publish.rate != 0 || q.deliver.rate != 0 || q.ack.rate != 0 || q.redeliver.rate != 0 ||
		q.messages.rate != 0 || q.ready.rate != 0 || q.unacked.rate != 0
}

// queueRateView is what handlers read of a queue's rates.
type queueRateView struct {
	Publish, Deliver, Ack, Redeliver float64
	Messages, Ready, Unacked         float64
}

// globalRates are the node's message and byte rates.
type globalRates struct {
	publish, deliver, ack, redeliver, confirm, unroutable, returned counterRate
	messages, ready, unacked                                        gaugeRate
}

// exchangeRates are one exchange's publish_in and publish_out rates.
type exchangeRates struct {
	in, out counterRate
	seen    uint64
}

// chanRates are one channel's message rates.
type chanRates struct {
	publish, confirm, returned, deliver, get, ack, redeliver counterRate
	seen                                                     uint64
}

type connRates struct {
	recv, send counterRate
	seen       uint64
}

type rateSampler struct {
	src Sources
	now func() time.Time

	// scratchMu serialises samples; scratch and taken are the last one's
	// buffers, again the queues the next one reads whatever the broker
	// notes (rates not zero, or not noted), rounds counts samples (a
	// prune of deleted queues' entries every pruneRounds).
	scratchMu sync.Mutex
	scratch   []queueSample
	taken     []*broker.Queue
	again     []*broker.Queue
	rounds    int
	read      int // queues read by the last sample

	mu     sync.Mutex
	last   time.Time
	gen    uint64
	queues map[qkey]*queueRates
	xs     map[qkey]*exchangeRates
	conns  map[string]*connRates
	chans  map[string]*chanRates
	global globalRates
	// ready and unacked are the sum of the queue entries' counts: the
	// node's gauges.
	ready, unacked int
}

// pruneRounds: entries of queues gone without a note (none expected; a
// safety net) are dropped every this many samples.
const pruneRounds = 300

type qkey struct{ vhost, name string }

// queueSample is one queue's counts in a sample.
type queueSample struct {
	k    qkey
	q    *broker.Queue
	gone bool
	r, u int
	st   broker.MessageStats
}

func newRateSampler(src Sources, now func() time.Time) *rateSampler {
	if now == nil {
		now = time.Now
	}
	return &rateSampler{src: src, now: now, queues: map[qkey]*queueRates{}, xs: map[qkey]*exchangeRates{}, conns: map[string]*connRates{},
		chans: map[string]*chanRates{}}
}

// run samples every rateInterval until done is closed.
func (s *rateSampler) run(done <-chan struct{}) {
	t := time.NewTicker(rateInterval)
	defer t.Stop()
	s.sample()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.sample()
		}
	}
}

// fresh takes a sample if the last is older than the interval (no ticker).
func (s *rateSampler) fresh(ticking bool) {
	if ticking {
		return
	}
	s.mu.Lock()
	stale := s.now().Sub(s.last) >= rateInterval
	s.mu.Unlock()
	if stale {
		s.sample()
	}
}

// sample reads every counter once. The counters are read before the
// sampler's lock is taken, so a slow queue never holds up a request.
func (s *rateSampler) sample() {
	s.scratchMu.Lock()
	defer s.scratchMu.Unlock()
	queues := s.scratch[:0]
	type xsample struct {
		k  qkey
		st broker.ExchangeStats
	}
	var xs []xsample
	var bs broker.Stats
	withQueues := s.src.API != nil && s.src.API.Broker != nil
	if withQueues {
		b := s.src.API.Broker
		bs = b.Counters()
		b.TrackActivity()
		taken := append(b.TakeActiveQueues(s.taken[:0]), s.again...)
		for _, q := range taken {
			k := qkey{q.VHost().Name(), q.Name()}
			if !q.Live() {
				queues = append(queues, queueSample{k: k, q: q, gone: true})
				continue
			}
			r, u, _, _, st := q.Status()
			queues = append(queues, queueSample{k: k, q: q, r: r, u: u, st: st})
		}
		s.read = len(taken)
		clear(taken)
		s.taken = taken[:0]
		for _, v := range b.VHosts() {
			for _, x := range v.Exchanges() {
				xs = append(xs, xsample{qkey{v.Name(), x.Name()}, x.Stats()})
			}
		}
	} else {
		bs = s.src.Broker()
	}
	var confirmed, returned uint64
	if s.src.AMQP != nil {
		a := s.src.AMQP()
		confirmed, returned = a.Confirmed, a.Returned
	}
	type cs struct {
		name       string
		recv, send uint64
	}
	var conns []cs
	if s.src.API != nil && s.src.API.Connections != nil {
		for _, c := range s.src.API.Connections() {
			conns = append(conns, cs{c.Name, c.RecvOct, c.SendOct})
		}
	}
	type chs struct {
		name string
		st   amqp.ChannelStats
	}
	var chans []chs
	if s.src.API != nil && s.src.API.Channels != nil {
		for _, c := range s.src.API.Channels() {
			chans = append(chans, chs{channelName(c.Connection, c.Number), c.Stats})
		}
	}

	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.last.IsZero()
	dt := now.Sub(s.last).Seconds()
	s.last = now
	s.gen++
	if withQueues {
		s.sampleQueuesLocked(queues, dt, first)
		bs.MessagesReady, bs.MessagesUnacked = s.ready, s.unacked
	}
	clear(queues)
	s.scratch = queues[:0]
	g := &s.global
	g.publish.update(bs.Published, dt, first)
	g.deliver.update(bs.Delivered, dt, first)
	g.ack.update(bs.Acked, dt, first)
	g.redeliver.update(bs.Redelivered, dt, first)
	g.unroutable.update(bs.Unroutable, dt, first)
	g.confirm.update(confirmed, dt, first)
	g.returned.update(returned, dt, first)
	g.messages.update(bs.MessagesReady+bs.MessagesUnacked, dt, first)
	g.ready.update(bs.MessagesReady, dt, first)
	g.unacked.update(bs.MessagesUnacked, dt, first)
	for _, x := range xs {
		xr, seen := s.xs[x.k]
		if !seen {
			xr = &exchangeRates{}
			s.xs[x.k] = xr
		}
		xr.in.update(x.st.PublishIn, dt, !seen)
		xr.out.update(x.st.PublishOut, dt, !seen)
		xr.seen = s.gen
	}
	for k, xr := range s.xs {
		if xr.seen != s.gen {
			delete(s.xs, k)
		}
	}
	for _, c := range conns {
		cr, seen := s.conns[c.name]
		if !seen {
			cr = &connRates{}
			s.conns[c.name] = cr
		}
		cr.recv.update(c.recv, dt, !seen)
		cr.send.update(c.send, dt, !seen)
		cr.seen = s.gen
	}
	for k, cr := range s.conns {
		if cr.seen != s.gen {
			delete(s.conns, k)
		}
	}
	for _, c := range chans {
		cr, seen := s.chans[c.name]
		if !seen {
			cr = &chanRates{}
			s.chans[c.name] = cr
		}
		st := c.st
		for _, u := range []struct {
			r *counterRate
			v uint64
		}{{&cr.publish, st.Publish}, {&cr.confirm, st.Confirm}, {&cr.returned, st.ReturnUnroutable}, {&cr.deliver, st.Deliver},
			{&cr.get, st.Get}, {&cr.ack, st.Ack}, {&cr.redeliver, st.Redeliver}} {
			u.r.update(u.v, dt, !seen)
		}
		cr.seen = s.gen
	}
	for k, cr := range s.chans {
		if cr.seen != s.gen {
			delete(s.chans, k)
		}
	}
}

// sampleQueuesLocked updates the entries of the queues read in this
// sample (dt seconds after the last) and chooses those the next one
// reads again. s.mu is held.
func (s *rateSampler) sampleQueuesLocked(queues []queueSample, dt float64, first bool) {
	clear(s.again)
	s.again = s.again[:0]
	forget := func(k qkey, qr *queueRates) {
		s.ready -= qr.ready.prev
		s.unacked -= qr.unacked.prev
		delete(s.queues, k)
	}
	for _, q := range queues {
		qr := s.queues[q.k]
		if qr != nil && qr.q != q.q {
			if q.gone {
				continue // an older queue of the name: the entry is the live one's
			}
			forget(q.k, qr) // deleted, and this is a new queue of the name
			qr = nil
		}
		if q.gone {
			if qr != nil {
				forget(q.k, qr)
			}
			continue
		}
		if qr != nil && qr.seen == s.gen {
			continue // read twice (noted and read again): once counts
		}
		if qr == nil {
			if q.r == 0 && q.u == 0 && q.st == (broker.MessageStats{}) {
				// Never used: its rates are all 0, as for a queue
				// not sampled, and a fleet's idle MQTT sessions
				// keep no entry each.
				if !q.q.RateNoted() {
					s.again = append(s.again, q.q)
				}
				continue
			}
			// A queue first read now had zero counts at the last
			// sample: unused then, or declared since.
			qr = &queueRates{q: q.q}
			s.queues[q.k] = qr
		}
		s.ready += q.r - qr.ready.prev
		s.unacked += q.u - qr.unacked.prev
		qr.publish.update(q.st.Published, dt, first)
		qr.deliver.update(q.st.Delivered, dt, first)
		qr.ack.update(q.st.Acked, dt, first)
		qr.redeliver.update(q.st.Redelivered, dt, first)
		qr.messages.update(q.r+q.u, dt, first)
		qr.ready.update(q.r, dt, first)
		qr.unacked.update(q.u, dt, first)
		qr.seen = s.gen
		if qr.moving() {
			s.again = append(s.again, q.q)
		}
	}
	if s.rounds++; s.rounds%pruneRounds == 0 {
		for k, qr := range s.queues {
			if !qr.q.Live() {
				forget(k, qr)
			}
		}
	}
}

// chanRate returns a channel's message rates (zeros before its first
// sample).
func (s *rateSampler) chanRate(name string) chanRates {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chans[name]; c != nil {
		return *c
	}
	return chanRates{}
}

// withQueueRates calls f with a lookup of the sampled queues' rates,
// under the sampler's lock (f must not sample).
func (s *rateSampler) withQueueRates(f func(rate func(qkey) queueRateView)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(func(k qkey) queueRateView {
		q := s.queues[k]
		if q == nil {
			return queueRateView{}
		}
		return q.view()
	})
}

func (q *queueRates) view() queueRateView {
	return queueRateView{Publish: q.publish.rate, Deliver: q.deliver.rate, Ack: q.ack.rate, Redeliver: q.redeliver.rate,
		Messages: q.messages.rate, Ready: q.ready.rate, Unacked: q.unacked.rate}
}

// globalView returns the node's rates.
func (s *rateSampler) globalView() globalRates {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.global
}

// connRate returns a connection's byte rates.
func (s *rateSampler) connRate(name string) (recv, send float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.conns[name]; c != nil {
		return c.recv.rate, c.send.rate
	}
	return 0, 0
}

// exchangeRate returns one exchange's publish_in and publish_out rates.
func (s *rateSampler) exchangeRate(k qkey) (in, out float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.xs[k]; x != nil {
		return x.in.rate, x.out.rate
	}
	return 0, 0
}

// queueRate returns one queue's rates.
func (s *rateSampler) queueRate(k qkey) queueRateView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[k]; q != nil {
		return q.view()
	}
	return queueRateView{}
}

// sampledQueues is how many queues the last sample saw.
func (s *rateSampler) sampledQueues() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues)
}
