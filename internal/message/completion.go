package message

import "time"

// Completion learns that a logged message is durable. A publisher's
// channel implements it to send confirms only after fsync.
type Completion interface {
	Durable(token uint64, err error)
}

// BatchCompletion is a Completion that answers a whole group commit at once
// (an AMQP channel confirms a run of publishes with one multiple basic.ack).
// A log calls DurableBatchEnd on it after the Durable calls of each batch;
// until then, Durable only records.
type BatchCompletion interface {
	Completion
	DurableBatchEnd()
}

// StoredMessage describes a recovered message without its body.
type StoredMessage struct {
	Seq       uint64
	Size      int64 // body bytes
	Published int64 // UnixNano, so TTLs keep counting from publication
	TTL       time.Duration
	HasTTL    bool // the message had an expiration property
	Priority  uint8
	Delivered bool // it had been delivered before the restart
}
