package raftnode

import (
	"errors"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// maybeSnapshot snapshots the state machine every SnapshotEntries applied
// entries or SnapshotBytes applied bytes, and after a configuration
// change, and compacts the log, keeping SnapshotSlack entries (fewer for
// a snapshot the bytes triggered, but a leader keeps what a follower
// within SnapshotSlack entries still needs: compactFloor).
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
	if !due && (g.snapBusy || g.applied < g.snapRetry || !g.snapshotWorthIt()) {
		return
	}
	index, since := g.applied, g.applied-g.snapIndex
	slack := cfg.SnapshotSlack
	if since < cfg.SnapshotEntries {
		slack = min(slack, since/10)
	}
	data, err := g.snapshotData()
	if err != nil {
		g.snapshotFailed(index, err)
		return
	}
	g.snapBytes = 0
	g.snapSize = uint64(len(data))
	cs := proto.Clone(g.confState).(*raftpb.ConfState)
	if due {
		_, err := g.storage.CreateSnapshot(index, cs, data)
		g.snapshotDone(index, slack, err)
		return
	}
	g.snapBusy = true
	g.snapWG.Add(1)
	go func() {
		defer g.snapWG.Done()
		_, err := g.storage.CreateSnapshot(index, cs, data)
		if !g.submit(func() { g.snapBusy = false; g.snapshotDone(index, slack, err) }) {
			return // the group stopped; the snapshot stays for its restart
		}
	}()
}

// snapshotRatio: a snapshot the bytes trigger waits until the entries
// applied since the last one are this many times the state's size.
const snapshotRatio = 4

// snapshotWorthIt reports whether the entries applied since the last
// snapshot call for the next: SnapshotEntries of them, or enough of their
// bytes — SnapshotBytes, and at least snapshotRatio times the size of the
// state, since a snapshot copies and writes the whole state (a quorum
// queue's every message). Before, a queue whose backlog was larger than
// SnapshotBytes wrote all of it again every SnapshotBytes of traffic; now
// the snapshots the bytes trigger cost at most 1/snapshotRatio of the
// bytes applied. The state's size is the state machine's StateSize when
// it has one: the log held in memory between two snapshots is then at
// most about snapshotRatio times the current state (beside the state
// itself), or SnapshotBytes. A machine without it is measured by its last
// snapshot, so after its state shrank (a queue drained after a burst) up
// to snapshotRatio times the state at that snapshot stays in memory until
// that many bytes or SnapshotEntries entries are applied (review8 F2).
// The entries trigger, for groups of many small entries, is as before.
func (g *Group) snapshotWorthIt() bool {
	cfg := &g.h.cfg
	if g.applied >= g.snapIndex+cfg.SnapshotEntries {
		return true
	}
	if g.snapBytes < cfg.SnapshotBytes {
		return false
	}
	size := g.snapSize
	if s, ok := g.sm.(StateSizer); ok {
		size = s.StateSize()
	}
	return g.snapBytes >= snapshotRatio*size
}

// snapshotData is the state machine's snapshot behind the group's
// version byte, in one buffer when the machine can append it there.
func (g *Group) snapshotData() ([]byte, error) {
	if a, ok := g.sm.(SnapshotAppender); ok {
		return a.AppendSnapshot([]byte{snapVersion})
	}
	data, err := g.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	return wrapSnapshot(data), nil
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
	g.snapFails = 0
	g.h.stats.snapsCreated.Add(1)
	if index > slack {
		to := g.compactFloor(index, index-slack)
		if err := g.storage.Compact(to); to > 0 && err != nil && !errors.Is(err, raft.ErrCompacted) {
			g.log.Error("raft log compaction failed", "index", to, "err", err)
		}
	}
}

// compactFloor lowers a compaction point to so that a leader keeps the
// entries a follower a little behind still needs: a snapshot the bytes
// triggered keeps only since/10 entries, often none with large batch
// entries, and a follower two entries behind would otherwise be sent the
// whole state — again at every snapshot, never catching up. A follower
// further behind than SnapshotSlack entries of index gets a snapshot as
// before, so what is kept stays bounded.
func (g *Group) compactFloor(index, to uint64) uint64 {
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return to
	}
	self := g.rn.BasicStatus().ID
	oldest := index - min(index, g.h.cfg.SnapshotSlack)
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id != self && pr.Match >= oldest && pr.Match < to {
			to = pr.Match
		}
	})
	return to
}

// maxSnapBackoff caps the doubling of the retry gap after failed
// snapshots: at most 64 times SnapshotEntries/10 entries apart.
const maxSnapBackoff = 6

// snapshotFailed schedules the next attempt after a failed snapshot,
// SnapshotEntries/10 applied entries later, doubling with every failure in
// a row up to 2^maxSnapBackoff times that. Each attempt encodes the whole
// state on the group's goroutine; one that fails for good (a state over
// the storage's limit: review7 F6) was re-encoded every SnapshotEntries/10
// entries, hundreds of MB each time for a large quorum queue.
func (g *Group) snapshotFailed(index uint64, err error) {
	gap := max(1, g.h.cfg.SnapshotEntries/10)
	if gap < 1<<50 {
		gap <<= min(g.snapFails, maxSnapBackoff)
	}
	g.snapFails++
	g.snapRetry = g.applied + gap
	g.log.Error("raft snapshot failed; retrying later", "index", index, "failures", g.snapFails,
		"retry_after_entries", gap, "err", err)
}
