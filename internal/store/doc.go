// Package store is Tern's durable storage: one append-only, segmented log
// per durable queue (the broker.Log implementation), node-wide group commit,
// recovery after a crash, and the durable definitions file.
//
// On-disk format: docs/design/storage.md.
//
// Concurrency: a QueueLog's state is guarded by its mu. The broker calls
// Append, Ack and Delivered with its queue's lock held (lock order: queue →
// log → committer). The committer goroutine closes a batch, flushes and
// fsyncs every log written in it, then calls the batch's completions; an
// fsync never runs under a log's lock, so appends continue during it and
// land in the next batch. Read looks the record up under the lock and reads
// the file without it, and the broker calls it without its queue's lock,
// so paging a body in stalls neither.
//
// Invariants: a message is acknowledged to its publisher only after the
// bytes of its record were fsynced (Options.Sync "always", the default),
// never after its write or an fsync covering it failed (its completion
// travels with the record; a failure settles it with the error); after a
// failed write or fsync the active segment is cut back to its last good
// end before anything is appended;
// segments are deleted oldest first and only once every message in them is
// acknowledged, so an ack record always outlives the message it cancels.
package store
