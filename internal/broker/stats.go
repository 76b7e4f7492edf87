package broker

import "sync/atomic"

// counters are the broker's running totals, updated with atomics on the hot
// path and read by Stats.
type counters struct {
	published         atomic.Uint64
	unroutable        atomic.Uint64
	delivered         atomic.Uint64
	redelivered       atomic.Uint64
	acked             atomic.Uint64
	deadLettered      atomic.Uint64
	deadLetterDropped atomic.Uint64
}

// Stats is a snapshot of the broker for metrics and management.
type Stats struct {
	Published, Unroutable, Delivered, Redelivered, Acked uint64
	DeadLettered, DeadLetterDropped                      uint64
	VHosts, Exchanges, Queues, Consumers                 int
	MessagesReady, MessagesUnacked                       int
	QueuedBytes                                          int64 // accounted memory of queued messages (memory.go)
	MemoryAlarm, DiskAlarm                               bool
	PerQueue                                             []QueueStats
}

// QueueStats describes one queue.
type QueueStats struct {
	VHost, Name                 string
	Ready, Unacked, Consumers   int
	Durable, Exclusive, AutoDel bool
}

// Stats returns a snapshot. It takes each queue's lock briefly.
func (b *Broker) Stats() Stats {
	s := b.Counters()
	for _, v := range b.VHosts() {
		s.VHosts++
		s.Exchanges += len(v.Exchanges())
		for _, q := range v.Queues() {
			r, u, c := q.Counts()
			s.Queues++
			s.Consumers += c
			s.MessagesReady += r
			s.MessagesUnacked += u
			s.PerQueue = append(s.PerQueue, QueueStats{VHost: v.name, Name: q.cfg.Name, Ready: r, Unacked: u, Consumers: c,
				Durable: q.cfg.Durable, Exclusive: q.cfg.Exclusive, AutoDel: q.cfg.AutoDelete})
		}
	}
	return s
}
