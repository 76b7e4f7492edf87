package broker

import (
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// The message vocabulary lives in internal/message. These aliases keep the
// core's code reading as before; code outside broker names message.X.
type (
	Header          = message.Header
	Properties      = message.Properties
	Message         = message.Message
	Origin          = message.Origin
	Completion      = message.Completion
	BatchCompletion = message.BatchCompletion
	StoredMessage   = message.StoredMessage
)

// perMessageTTL parses m's expiration property (milliseconds as a decimal
// string). ok is false when it is absent.
func perMessageTTL(m *Message) (ttl time.Duration, ok bool, err error) {
	ttl, ok, err = m.TTL()
	if err != nil {
		return 0, false, errorf(KindPreconditionFailed, "invalid expiration '%s'", m.Props.Expiration)
	}
	return ttl, ok, nil
}

// ValidateExpiration checks m's expiration property before publishing, as
// RabbitMQ does (a bad value closes the channel with 406).
func ValidateExpiration(m *Message) error {
	_, _, err := perMessageTTL(m)
	return err
}

// Delivery is a message handed to a consumer or to basic.get.
type Delivery struct {
	Queue       *Queue
	Msg         *Message
	Seq         uint64 // the queue's sequence number, used to ack/requeue
	Redelivered bool
	// Remaining is the ready count left in the queue (for basic.get-ok and
	// for consumers judging how far behind they are).
	Remaining int

	persisted  bool   // the message is in the queue's log
	streamName string // a named stream consumer's delivery: acks store its offset
}
