package amqp

import "sync/atomic"

// ChannelStats are a channel's running message totals, for the management
// API's channel message_stats (RabbitMQ's publish, confirm,
// return_unroutable, deliver, get, ack, redeliver). Each is an atomic the
// channel alone adds to, so counting costs an uncontended add per message
// and the snapshot reads them without the channel's lock.
type ChannelStats struct {
	Publish, Confirm, ReturnUnroutable uint64
	Deliver, Get, Ack, Redeliver       uint64
}

type chanCounters struct {
	publish, confirm, returned  atomic.Uint64
	deliver, get, ack, redelivd atomic.Uint64
}

func (c *chanCounters) load() ChannelStats {
	return ChannelStats{Publish: c.publish.Load(), Confirm: c.confirm.Load(), ReturnUnroutable: c.returned.Load(),
		Deliver: c.deliver.Load(), Get: c.get.Load(), Ack: c.ack.Load(), Redeliver: c.redelivd.Load()}
}

// countDelivered counts a delivery to a consumer (or, with get, a
// basic.get-ok).
func (c *chanCounters) countDelivered(get, redelivered bool) {
	if get {
		c.get.Add(1)
	} else {
		c.deliver.Add(1)
	}
	if redelivered {
		c.redelivd.Add(1)
	}
}
