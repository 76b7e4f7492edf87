package broker

import (
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// Log is the seam where durable storage plugs into a queue: the persistent
// messages of a durable queue are appended to it and acknowledged through it.
// The local segmented store satisfies it, and later a replicated log will.
// A queue with a nil Log holds its messages in memory only.
//
// Append, Ack and Delivered are called with the queue's lock held and must
// not block on I/O beyond buffering; Read may read from disk and is called
// without the queue's lock, concurrently with the others.
type Log interface {
	// Append stores msg under the queue's sequence number seq. Once the
	// record is durable (or has failed), done.Durable(token, err) is called
	// from the storage's commit goroutine. An immediate error means nothing
	// was stored and done will not be called.
	Append(seq uint64, msg *message.Message, done message.Completion, token uint64) error
	// Ack records that seq is consumed (acked, expired, dead-lettered,
	// dropped); storage reclaims space once a segment is fully consumed.
	Ack(seq uint64)
	// Delivered records that seq was handed to a consumer, so it comes back
	// marked redelivered after a restart.
	Delivered(seq uint64)
	// Read loads a stored message (for messages whose body was paged out).
	Read(seq uint64) (*message.Message, error)
	// Recovered lists the unacknowledged messages found when the log was
	// opened, in sequence order.
	Recovered() []message.StoredMessage
	// NextSeq is one past the highest sequence number the log ever held,
	// acknowledged ones included: where the queue's numbering resumes.
	NextSeq() uint64
	// Close flushes and releases the log.
	Close() error
}

// StreamLog is a stream's log: messages stay after acknowledgement, readers
// keep their own positions (offsets are the queue's sequence numbers), and
// retention drops whole segments from the head.
type StreamLog interface {
	Log
	// AppendNext stores msg at the next offset and returns it. The log,
	// not the stream, picks the offset, so a write the storage cut away
	// after a failure (a full disk: its publishers are nacked) leaves no
	// hole: the next append reuses its offset, and offsets stay dense.
	AppendNext(msg *message.Message, done message.Completion, token uint64) (uint64, error)
	// DurableSeq is one past the highest durable offset: readers stop there.
	DurableSeq() uint64
	// FirstSeq is the oldest offset still held.
	FirstSeq() uint64
	// SeqAtTime is the first offset published at or after ts (UnixNano).
	SeqAtTime(ts int64) uint64
	// OnDurable registers a callback for when DurableSeq advances.
	OnDurable(f func())
	// ApplyRetention drops head segments past any limit (<0 or 0 age: off).
	ApplyRetention(maxLen, maxBytes int64, maxAge time.Duration) int
	// FilterHash is the FilterHash of seq's filter value (0 for none), read
	// from the index so filtered readers skip messages without reading them.
	FilterHash(seq uint64) (uint32, bool)
	// StoreOffset and StoredOffset keep named consumers' positions.
	StoreOffset(name string, offset uint64)
	StoredOffset(name string) (uint64, bool)
}

// Storage is what the broker needs from durable storage.
type Storage interface {
	// StreamLog opens, recovering if it exists, the log of a stream.
	StreamLog(id string, segmentSize int64) (StreamLog, error)
	// QueueLog opens, recovering if it exists, the log of a durable queue.
	QueueLog(id string) (Log, error)
	// DeleteQueueLog removes a deleted queue's log.
	DeleteQueueLog(id string) error
	// AppendCommand adds a durable definition command to the
	// definitions log, in call order, without waiting for the disk; the
	// broker calls it under the vhost's lock so the log's order is the
	// order commands were applied. It returns the command's sequence
	// number for SyncCommands.
	AppendCommand(c Command) (seq uint64, err error)
	// SyncCommands returns once command seq and every one before it are
	// durable (group commit: one fsync covers every command appended
	// meanwhile).
	SyncCommands(seq uint64) error
	// SnapshotDue says the log has grown (or failed) enough that the
	// broker should call SaveDefinitions.
	SnapshotDue() bool
	// SaveDefinitions durably replaces the stored definitions with d,
	// which holds the effect of every command appended so far, and starts
	// a new log. No AppendCommand may run meanwhile.
	SaveDefinitions(d *Definitions) error
}

// refusalNotifier is a Log that tells its queue which records a storage
// failure cut away after the queue listed them: their publishers got a
// nack, and the queue forgets those that wait paged out in its ready list
// (classicBackend.dropRefusedLocked), so its counts are true.
type refusalNotifier interface {
	OnRefused(f func(first, last uint64))
}
