package broker

// Log is the seam where durable storage plugs into a queue: the persistent
// messages of a durable queue are appended to it and acknowledged through it.
// The local segmented store and, later, a replicated log satisfy it. A queue
// with a nil Log holds messages in memory only (the behaviour of this
// version for every queue).
//
// Implementations are safe for concurrent use. Append may batch: done is
// called once the entry is durable (after the group-commit fsync), from any
// goroutine, and the publisher confirm waits for it.
type Log interface {
	// Append stores msg under the queue sequence number seq.
	Append(seq uint64, msg *Message, done func(error))
	// Ack marks seq as consumed; storage may reclaim it.
	Ack(seq uint64)
	// Close flushes and releases the log.
	Close() error
}
