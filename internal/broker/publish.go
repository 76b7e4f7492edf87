package broker

import (
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/route"
)

// RouteScratch holds reusable routing buffers so publishing allocates
// nothing for them. Each publisher (an AMQP channel) owns one; it is not safe
// for concurrent use.
type RouteScratch struct {
	targets []target
	queues  []*Queue
	visited []*Exchange
}

// PublishResult says where a message went.
type PublishResult struct {
	// Routed counts the queues that took the message (a delayed message
	// counts as routed once accepted by the delay exchange).
	Routed int
	// Rejected is set when a queue refused it (x-overflow reject-publish,
	// or storage failed): the publisher's confirm is a nack.
	Rejected bool
	// Pending counts durable queues that logged the message: done.Durable
	// will be called once per queue, and the confirm waits for all of them.
	Pending int
	// Hold is how long the publisher should stop reading before its next
	// message: the longest wait the publish-rate policies of the queues
	// that took this one ask for (policy_rate.go). The message itself was
	// accepted; the protocol adapters sleep, so TCP slows the publisher.
	Hold time.Duration
}

// Publish routes m through exchange to every matching queue. m.Exchange and
// m.RoutingKey must be set; Published is set here if zero. done (may be
// nil) learns when the message is durable in each durable queue it reached;
// token is passed back to it.
func (v *VHost) Publish(s *RouteScratch, m *message.Message, done message.Completion, token uint64) (PublishResult, error) {
	x := v.exchange(m.Exchange)
	if x == nil {
		return PublishResult{}, v.notFoundExchange(m.Exchange)
	}
	if x.cfg.Internal {
		return PublishResult{}, errorf(KindAccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", m.Exchange, v.name)
	}
	if m.Published == 0 {
		m.Published = v.broker.cfg.Clock.Now().UnixNano()
	}
	b := v.broker
	b.stats.published.Add(1)
	if x.delayed != nil {
		if delay, ok := delayOf(m); ok {
			pending, err := x.delayed.add(m, delay, done, token)
			if err != nil {
				v.broker.log.Warn("could not store a delayed message", "exchange", x.cfg.Name, "err", err)
				return PublishResult{Rejected: true}, nil
			}
			res := PublishResult{Routed: 1}
			if pending {
				res.Pending = 1
			}
			x.countPublish(1)
			return res, nil
		}
	}
	res := v.deliverTo(v.routeAll(s, x, m), m, done, token)
	x.countPublish(res.Routed)
	return res, nil
}

func (v *VHost) deliverTo(queues []*Queue, m *message.Message, done message.Completion, token uint64) PublishResult {
	var res PublishResult
	for _, q := range queues {
		out, pending := q.publish(m, done, token)
		switch out {
		case Enqueued:
			res.Routed++
			res.Hold = max(res.Hold, q.publishHold())
		case Rejected:
			res.Rejected = true
		}
		if pending {
			res.Pending++
		}
	}
	if res.Routed == 0 && !res.Rejected {
		v.broker.stats.unroutable.Add(1)
	}
	return res
}

// routeAll returns the queues m reaches from x, following exchange-to-
// exchange bindings and, when nothing matches, alternate exchanges. The
// result aliases s and is valid until s is used again.
func (v *VHost) routeAll(s *RouteScratch, x *Exchange, m *message.Message) []*Queue {
	s.queues, s.visited, s.targets = s.queues[:0], s.visited[:0], s.targets[:0]
	v.routeInto(s, x, m)
	for ae := x; len(s.queues) == 0 && ae.alternateExchange() != ""; {
		next := v.exchange(ae.alternateExchange())
		if next == nil || visited(s, next) {
			break
		}
		v.routeInto(s, next, m)
		ae = next
	}
	s.queues = route.Dedup(s.queues)
	return s.queues
}

func visited(s *RouteScratch, x *Exchange) bool {
	for _, y := range s.visited {
		if y == x {
			return true
		}
	}
	return false
}

func (v *VHost) routeInto(s *RouteScratch, x *Exchange, m *message.Message) {
	if visited(s, x) {
		return
	}
	s.visited = append(s.visited, x)
	if x.isDefault {
		if q := v.queue(m.RoutingKey); q != nil {
			s.queues = append(s.queues, q)
		}
		return
	}
	start := len(s.targets)
	key := m.RoutingKey
	if x.kind == route.ConsistentHash {
		key = x.hashKey(m)
	}
	s.targets = x.routes().Route(s.targets, key, m.Props.Headers)
	end := len(s.targets)
	for i := start; i < end; i++ {
		t := s.targets[i]
		if t.q != nil {
			s.queues = append(s.queues, t.q)
		} else {
			v.routeInto(s, t.x, m)
		}
	}
}
