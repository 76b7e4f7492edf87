package broker

// ConsumerStatus is what a consumer is doing for its queue, as RabbitMQ's
// management API shows it (activity_status).
type ConsumerStatus uint8

// Consumer statuses.
const (
	// ConsumerUp: a consumer of a queue without single-active-consumer,
	// and any consumer whose queue cannot tell (a classic queue held by
	// another node that could not be asked).
	ConsumerUp ConsumerStatus = iota
	// ConsumerSingleActive: the consumer a single-active-consumer queue
	// delivers to.
	ConsumerSingleActive
	// ConsumerWaiting: a consumer of a single-active-consumer queue
	// waiting for the active one to go.
	ConsumerWaiting
)

// String returns RabbitMQ's activity_status name.
func (s ConsumerStatus) String() string {
	switch s {
	case ConsumerSingleActive:
		return "single_active"
	case ConsumerWaiting:
		return "waiting"
	}
	return "up"
}

// Active reports whether the consumer is given messages (RabbitMQ's
// consumer "active" flag).
func (s ConsumerStatus) Active() bool { return s != ConsumerWaiting }

// ConsumerStatus returns c's status on q. It takes the queue's lock, once:
// callers must not hold a lock that the queue's deliveries take (a
// channel's), since a delivery holds the queue's lock while it calls the
// consumer. A consumer q does not know is ConsumerUp.
func (q *Queue) ConsumerStatus(c Consumer) ConsumerStatus {
	switch b := q.backend.(type) {
	case *classicBackend:
		return b.consumerStatus(c)
	case *quorumBackend:
		return b.consumerStatus(c)
	case remoteBackend:
		// A classic queue another node holds: that node's queue decides
		// which consumer is active; the Forwarder asks it.
		if f, ok := b.fwd.(ConsumerStatusForwarder); ok && q.args.singleActive {
			return f.ConsumerStatus(q, c)
		}
	}
	return ConsumerUp
}

// ConsumerStatusForwarder is a Forwarder that can ask a remote queue's
// node for the status of a consumer it forwards there (/api/consumers).
// ConsumerStatus is ConsumerUp when the node cannot tell or be asked.
type ConsumerStatusForwarder interface {
	ConsumerStatus(q *Queue, c Consumer) ConsumerStatus
}

// consumerStatus: the single active consumer of a classic queue is the
// first of its consumers (tryDeliverLocked offers messages to it alone).
func (q *classicBackend) consumerStatus(c Consumer) ConsumerStatus {
	if !q.args.singleActive {
		return ConsumerUp
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, r := range q.consumers {
		if r.c == c {
			if i == 0 {
				return ConsumerSingleActive
			}
			return ConsumerWaiting
		}
	}
	return ConsumerUp
}

// consumerStatus: the machine, which every replica applies, names the
// single active consumer by node and key; this replica's view may lag the
// leader's by the entries in flight, as counts does.
func (b *quorumBackend) consumerStatus(c Consumer) ConsumerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.m.cfg.singleActive {
		return ConsumerUp
	}
	for key, l := range b.local {
		if l.c == c {
			if a := b.m.active; a != nil && a.node == b.node && a.key == key {
				return ConsumerSingleActive
			}
			return ConsumerWaiting
		}
	}
	return ConsumerUp
}
