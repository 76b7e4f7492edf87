package broker

// Verdict is a consumer's answer to a delivery offer.
type Verdict int

// Verdicts.
const (
	// Refuse takes nothing: the consumer cannot take a message now.
	Refuse Verdict = iota
	// Take accepts the delivery; the consumer acks or requeues it later
	// (unless it consumes with NoAck).
	Take
	// TakeSettled accepts the delivery and settles it at once, as no-ack
	// would (an MQTT QoS 0 delivery, or one the consumer filters out).
	TakeSettled
)

// Consumer receives a queue's messages. Implementations belong to protocol
// adapters (an AMQP channel's consumer, an MQTT session).
type Consumer interface {
	// TryDeliver offers d. Refuse means the consumer cannot take a message
	// now (prefetch reached, flow stopped, outbound buffer full); the
	// consumer then calls Queue.Dispatch once it can. It is called with the
	// queue's lock held and must not call back into the queue.
	TryDeliver(d Delivery) Verdict
	// Cancelled tells the consumer the queue removed it (the queue was
	// deleted). It is called without the queue's lock.
	Cancelled(q *Queue)
}

// ConsumeOptions are a consumer's settings on one queue.
type ConsumeOptions struct {
	NoAck     bool
	Exclusive bool
	Priority  int
	Stream    StreamOptions // streams only
	// Prefetch is the consumer's prefetch count (0: unlimited): a quorum
	// queue's credit for it, which its state machine assigns against.
	Prefetch int
}
