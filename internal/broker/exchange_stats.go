package broker

// ExchangeStats are an exchange's running message totals since it was
// declared (or since this node started), for the management API's
// message_stats: PublishIn counts the messages published to it,
// PublishOut the copies it routed to queues (a message reaching three
// queues counts three), as RabbitMQ's publish_in and publish_out do. A
// publish costs two atomic adds on the exchange, beside the broker-wide
// total it already counts.
type ExchangeStats struct {
	PublishIn, PublishOut uint64
}

func (x *Exchange) countPublish(routed int) {
	x.published.Add(1)
	if routed > 0 {
		x.routed.Add(uint64(routed))
	}
}

// Stats returns the exchange's totals.
func (x *Exchange) Stats() ExchangeStats {
	return ExchangeStats{PublishIn: x.published.Load(), PublishOut: x.routed.Load()}
}
