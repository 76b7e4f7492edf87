// Package wal is a node's write-ahead log for every Raft group it hosts:
// one append-only log, cut into numbered segment files, that all groups
// write through a single writer goroutine. While one batch is being
// fsynced the next gathers every group's saves, so one fsync covers many
// groups (group commit across groups) and a node with a thousand groups
// runs one fsync stream, not a thousand.
//
// Each group's storage (GroupStorage) implements raftnode.Storage: the
// raft.Storage reads are served from memory (the live log after the last
// compaction, the hard state and the last snapshot), and Save makes a
// Ready durable and calls its completion once an fsync covers it.
//
// On disk a segment is a sequence of batches; a batch is what one write
// and one fsync carried: a batch header record with the batch's length,
// then one record per save, snapshot, compaction, checkpoint or removal.
// Every record is framed with its length and a CRC-32C. Recovery replays
// every segment in order; a damaged final batch of the last segment is a
// torn write and is cut off, damage anywhere else is reported as
// corruption with the file and offset.
//
// Old segments are deleted once no group needs anything in them. A group
// that pins the oldest segment when the log holds more than
// Options.MaxSegments segments (an idle group whose hard state was
// written long ago, or one that never compacts) has its live state
// rewritten forward as a checkpoint record so the segment can go.
// See docs/design/replication.md, section WAL.
package wal
