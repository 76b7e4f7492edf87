package mgmt

import (
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/broker"
)

// Rates: RabbitMQ shows each counter with a *_details.rate, the change per
// second. A sampler reads the counters once a second (every queue's
// totals under its own lock, the broker's atomics, each connection's byte
// counts) and keeps the last rate of each; the message path does nothing
// for it. An API request only reads the last sample, so a GET costs the
// same with one queue or a busy one. Without a ticker (Sources.API.Done
// nil) a request takes a sample itself when the last is a second old.

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

	// scratchMu serialises samples; scratch is the last one's buffer.
	scratchMu sync.Mutex
	scratch   []queueSample

	mu     sync.Mutex
	last   time.Time
	gen    uint64
	queues map[qkey]*queueRates
	xs     map[qkey]*exchangeRates
	conns  map[string]*connRates
	chans  map[string]*chanRates
	global globalRates
}

type qkey struct{ vhost, name string }

// queueSample is one queue's counts in a sample.
type queueSample struct {
	k    qkey
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
	if s.src.API != nil && s.src.API.Broker != nil {
		b := s.src.API.Broker
		bs = b.Counters()
		for _, v := range b.VHosts() {
			for _, q := range v.Queues() {
				r, u, _, _, st := q.Status()
				if r == 0 && u == 0 && st == (broker.MessageStats{}) {
					// Never used: its rates are all 0, as for a queue
					// not sampled, and a fleet's idle MQTT sessions
					// cost no sample each.
					continue
				}
				queues = append(queues, queueSample{k: qkey{v.Name(), q.Name()}, r: r, u: u, st: st})
				bs.MessagesReady += r
				bs.MessagesUnacked += u
			}
			for _, x := range v.Exchanges() {
				xs = append(xs, xsample{qkey{v.Name(), x.Name()}, x.Stats()})
			}
		}
	} else {
		bs = s.src.Broker()
	}
	s.scratch = queues
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
	for _, q := range queues {
		qr, seen := s.queues[q.k]
		if !seen {
			qr = &queueRates{}
			s.queues[q.k] = qr
		}
		// A queue first sampled now had zero counts at the last sample:
		// unused then (not sampled), or declared since.
		isNew := first
		qr.publish.update(q.st.Published, dt, isNew)
		qr.deliver.update(q.st.Delivered, dt, isNew)
		qr.ack.update(q.st.Acked, dt, isNew)
		qr.redeliver.update(q.st.Redelivered, dt, isNew)
		qr.messages.update(q.r+q.u, dt, isNew)
		qr.ready.update(q.r, dt, isNew)
		qr.unacked.update(q.u, dt, isNew)
		qr.seen = s.gen
	}
	for k, qr := range s.queues {
		if qr.seen != s.gen {
			delete(s.queues, k)
		}
	}
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
