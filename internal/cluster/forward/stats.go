package forward

import "sync/atomic"

// Stats are a Forwarder's counters since it started, for /api/cluster and
// metrics.
type Stats struct {
	// Client side.
	PublishesForwarded uint64 // messages sent to their queue's node
	PublishBatches     uint64 // publish requests those went in
	PublishesNacked    uint64 // of those, refused by the owner or unanswered
	DeliveriesReceived uint64 // pushed to this node's forwarded consumers
	DeliveriesLost     uint64 // found lost in transit (a gap or a keepalive) and given back
	RemoteConsumers    int    // this node's consumers of other nodes' queues, now
	// Owner side.
	PublishesServed  uint64 // messages other nodes forwarded here
	DeliveriesPushed uint64 // deliveries pushed to other nodes' consumers
	SessionsEnded    uint64 // other nodes' sessions ended (lease, restart, NodeDown)
	NotifyRefused    uint64 // deliver notifies the transport refused (their deliveries come back by keepalive)
	Sessions         int    // other nodes with consumers or gets here, now
}

type counters struct {
	pubForwarded, pubBatches, pubNacked   atomic.Uint64
	delivReceived, delivLost              atomic.Uint64
	pubServed, delivPushed, sessionsEnded atomic.Uint64
	notifyRefused                         atomic.Uint64
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	consumers, sessions := len(f.byQC), len(f.sessions)
	f.mu.Unlock()
	c := &f.stats
	return Stats{
		PublishesForwarded: c.pubForwarded.Load(), PublishBatches: c.pubBatches.Load(), PublishesNacked: c.pubNacked.Load(),
		DeliveriesReceived: c.delivReceived.Load(), DeliveriesLost: c.delivLost.Load(), RemoteConsumers: consumers,
		PublishesServed: c.pubServed.Load(), DeliveriesPushed: c.delivPushed.Load(), SessionsEnded: c.sessionsEnded.Load(), NotifyRefused: c.notifyRefused.Load(),
		Sessions: sessions,
	}
}
