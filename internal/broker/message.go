package broker

import (
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// perMessageTTL parses m's expiration property (milliseconds as a decimal
// string). ok is false when it is absent.
func perMessageTTL(m *message.Message) (ttl time.Duration, ok bool, err error) {
	ttl, ok, err = m.TTL()
	if err != nil {
		return 0, false, errorf(KindPreconditionFailed, "invalid expiration '%s'", m.Props.Expiration)
	}
	return ttl, ok, nil
}

// ValidateExpiration checks m's expiration property before publishing, as
// RabbitMQ does (a bad value closes the channel with 406).
func ValidateExpiration(m *message.Message) error {
	_, _, err := perMessageTTL(m)
	return err
}

// Delivery is a message handed to a consumer or to basic.get.
type Delivery struct {
	Queue       *Queue
	Msg         *message.Message
	Seq         uint64 // the queue's sequence number, used to ack/requeue
	Redelivered bool
	// Remaining is the ready count left in the queue (for basic.get-ok and
	// for consumers judging how far behind they are).
	Remaining int

	persisted  bool   // the message is in the queue's log
	streamName string // a named stream consumer's delivery: acks store its offset
	qkey       uint64 // a quorum queue's delivery: the key of the consumer it is checked out to
	qacq       uint32 // and the message's acquired count then: its settlement names this delivery
}
