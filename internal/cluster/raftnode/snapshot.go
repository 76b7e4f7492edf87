package raftnode

import (
	"errors"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// maybeSnapshot snapshots the state machine every SnapshotEntries applied
// entries or SnapshotBytes applied bytes, and after a configuration
// change, and compacts the log, keeping SnapshotSlack entries (fewer for
// a snapshot the bytes triggered).
//
// The state machine encodes its state here, on the group's goroutine (it
// must be the state as of g.applied); recording it in the storage — a
// WAL record of the whole state, megabytes for a queue with a backlog,
// and an fsync — runs on a goroutine of its own while the group goes on
// (heartbeats, appends, applies), one at a time; the log is compacted
// back on the group's goroutine once the snapshot is durable.
//
// The snapshot after a configuration change is for a replica being
// added: it starts empty, so only a snapshot can catch it up, and Raft
// refuses one whose configuration does not hold it; the leader sends the
// storage's last snapshot, which must therefore postdate the change, so
// that one is recorded before the group goes on. Every replica takes it,
// as any may lead by the time the new one asks.
func (g *Group) maybeSnapshot() {
	cfg := &g.h.cfg
	due := g.snapDue
	g.snapDue = false
	if !due && (g.snapBusy || g.applied < g.snapRetry ||
		(g.applied < g.snapIndex+cfg.SnapshotEntries && g.snapBytes < cfg.SnapshotBytes)) {
		return
	}
	index, since := g.applied, g.applied-g.snapIndex
	slack := cfg.SnapshotSlack
	if since < cfg.SnapshotEntries {
		slack = min(slack, since/10)
	}
	data, err := g.sm.Snapshot()
	if err != nil {
		g.snapshotFailed(index, err)
		return
	}
	g.snapBytes = 0
	cs := proto.Clone(g.confState).(*raftpb.ConfState)
	if due {
		_, err := g.storage.CreateSnapshot(index, cs, wrapSnapshot(data))
		g.snapshotDone(index, slack, err)
		return
	}
	g.snapBusy = true
	g.snapWG.Add(1)
	go func() {
		defer g.snapWG.Done()
		_, err := g.storage.CreateSnapshot(index, cs, wrapSnapshot(data))
		if !g.submit(func() { g.snapBusy = false; g.snapshotDone(index, slack, err) }) {
			return // the group stopped; the snapshot stays for its restart
		}
	}()
}

// snapshotDone notes a snapshot recorded at index (or its failure) and
// compacts the log up to slack entries before it.
func (g *Group) snapshotDone(index, slack uint64, err error) {
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return // a leader's newer snapshot was restored meanwhile
	}
	if err != nil {
		g.snapshotFailed(index, err)
		return
	}
	g.snapIndex = max(g.snapIndex, index)
	g.h.stats.snapsCreated.Add(1)
	if index > slack {
		if err := g.storage.Compact(index - slack); err != nil && !errors.Is(err, raft.ErrCompacted) {
			g.log.Error("raft log compaction failed", "index", index-slack, "err", err)
		}
	}
}

func (g *Group) snapshotFailed(index uint64, err error) {
	g.log.Error("raft snapshot failed; retrying later", "index", index, "err", err)
	g.snapRetry = g.applied + max(1, g.h.cfg.SnapshotEntries/10)
}
