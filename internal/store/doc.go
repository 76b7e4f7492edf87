// Package store is Tern's durable storage: one append-only, segmented log
// per durable queue or stream (QueueLog, which implements broker.Log and
// broker.StreamLog; stream.go adds retention, time lookup, filter hashes
// and consumer offsets), keyed record logs on the
// same machinery (MQTT retained messages, delayed messages; records.go),
// node-wide group commit, recovery after a crash, and the durable
// definitions: an opaque snapshot plus an append-only log of opaque command
// records (defslog.go); what the bytes mean belongs to the caller
// (internal/server encodes the broker's commands and definitions).
//
// On-disk format: docs/design/storage.md and docs/design/definitions.md.
//
// Concurrency: a QueueLog's state is guarded by its mu. The broker calls
// Append, Ack and Delivered with its queue's lock held (lock order: queue →
// log → committer). The committer goroutine closes a batch, flushes and
// fsyncs every log written in it, then calls the batch's completions; an
// fsync never runs under a log's lock, so appends continue during it and
// land in the next batch. Read looks the record up under the lock and reads
// the file without it, and the broker calls it without its queue's lock,
// so paging a body in stalls neither. The definitions log has its own group
// commit (defsLog.mu; its fdatasync runs without it) and is a leaf: it calls
// nothing of the broker's.
//
// Invariants: a message is acknowledged to its publisher only after the
// bytes of its record were fsynced (Options.Sync "always", the default),
// never after its write or an fsync covering it failed (its completion
// travels with the record; a failure settles it with the error); after a
// failed write or fsync the active segment is cut back to its last good
// end before anything is appended (a stream's log then appends at the
// first offset cut away, so stream offsets stay dense: AppendNext);
// segments are deleted oldest first and only once every message in them is
// acknowledged, so an ack record always outlives the message it cancels.
package store
