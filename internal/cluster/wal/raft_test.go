package wal

import (
	"fmt"
	"io"
	"log"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/vfs"
)

// An in-process cluster of etcd RawNodes whose storage is this WAL: three
// nodes, each with its own crashable disk and one WAL shared by two
// groups. The driver is one goroutine: it ticks, delivers messages (some
// dropped), runs each replica's Ready loop (save and wait, send, apply,
// snapshot and compact every few entries), and now and then cuts a
// node's power and restarts it from what its WAL recovers.

type replica struct {
	group      uint64
	rn         *raft.RawNode
	g          *GroupStorage
	applied    []string // data of the applied normal entries
	appliedIdx uint64
	cs         *raftpb.ConfState
}

type testNode struct {
	id   uint64
	fs   *vfs.MemFS
	w    *WAL
	reps map[uint64]*replica
	down bool
}

var raftLogger = &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}

func encodeApplied(a []string) []byte { return []byte(strings.Join(a, "\n")) }

func decodeApplied(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}

func (n *testNode) start(t *testing.T, groups []uint64) {
	t.Helper()
	w, err := Open(n.fs, "/wal", Options{SegmentSize: 4096, MaxSegments: 3, Logger: quiet})
	if err != nil {
		t.Fatalf("node %d: %v", n.id, err)
	}
	n.w, n.reps, n.down = w, map[uint64]*replica{}, false
	for _, gid := range groups {
		g := w.Group(gid)
		snap, _ := g.Snapshot()
		r := &replica{group: gid, g: g}
		if idx := snap.GetMetadata().GetIndex(); idx > 0 {
			r.applied, r.appliedIdx, r.cs = decodeApplied(snap.GetData()), idx, snap.GetMetadata().GetConfState()
		}
		rn, err := raft.NewRawNode(&raft.Config{ID: n.id, ElectionTick: 10, HeartbeatTick: 1, Storage: g,
			Applied: r.appliedIdx, MaxSizePerMsg: 4096, MaxInflightMsgs: 64, CheckQuorum: true, PreVote: true, Logger: raftLogger})
		if err != nil {
			t.Fatalf("node %d group %d: %v", n.id, gid, err)
		}
		if last, _ := g.LastIndex(); last == 0 && r.appliedIdx == 0 {
			if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
				t.Fatal(err)
			}
		}
		r.rn = rn
		n.reps[gid] = r
	}
}

type envelope struct {
	group uint64
	m     *raftpb.Message
}

// handleReady runs one Ready of r; it returns the messages to send.
func (n *testNode) handleReady(t *testing.T, r *replica, committed map[uint64][]string) []envelope {
	t.Helper()
	rd := r.rn.Ready()
	if !raft.IsEmptySnap(rd.Snapshot) {
		md := rd.Snapshot.GetMetadata()
		r.applied, r.appliedIdx, r.cs = decodeApplied(rd.Snapshot.GetData()), md.GetIndex(), md.GetConfState()
	}
	var hs *raftpb.HardState
	if !raft.IsEmptyHardState(rd.HardState) {
		hs = rd.HardState
	}
	if err := save(t, r.g, hs, rd.Entries, rd.Snapshot); err != nil {
		t.Fatalf("node %d group %d: save: %v", n.id, r.group, err)
	}
	var out []envelope
	for _, m := range rd.Messages {
		out = append(out, envelope{r.group, m})
	}
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() <= r.appliedIdx {
			continue
		}
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) > 0 {
				r.applied = append(r.applied, string(e.GetData()))
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				t.Fatal(err)
			}
			r.cs = r.rn.ApplyConfChange(&cc)
		}
		r.appliedIdx = e.GetIndex()
		// Whatever any replica applies was committed: every replica
		// must apply the same sequence.
		c := committed[r.group]
		if len(r.applied) > len(c) {
			committed[r.group] = slices.Clone(r.applied)
		} else if !slices.Equal(c[:len(r.applied)], r.applied) {
			t.Fatalf("node %d group %d diverged at index %d:\n applied %v\ncommitted %v", n.id, r.group, r.appliedIdx, r.applied, c)
		}
		if r.appliedIdx%7 == 0 {
			if _, err := r.g.CreateSnapshot(r.appliedIdx, r.cs, encodeApplied(r.applied)); err != nil {
				t.Fatalf("node %d group %d: snapshot: %v", n.id, r.group, err)
			}
			if first, _ := r.g.FirstIndex(); r.appliedIdx > first+2 {
				if err := r.g.Compact(r.appliedIdx - 2); err != nil {
					t.Fatalf("node %d group %d: compact: %v", n.id, r.group, err)
				}
			}
		}
	}
	r.rn.Advance(rd)
	return out
}

// TestRaftClusterOnTheWAL: elections, replication, snapshots sent to
// followers that fell behind compaction, and power cuts of any node with
// restarts from its WAL; no committed entry is lost and no replica
// diverges, and in the end every replica holds every committed entry.
func TestRaftClusterOnTheWAL(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	groups := []uint64{11, 12}
	nodes := map[uint64]*testNode{}
	for id := uint64(1); id <= 3; id++ {
		nodes[id] = &testNode{id: id, fs: vfs.NewCrashable()}
		nodes[id].start(t, groups)
	}
	committed := map[uint64][]string{}
	var net []envelope
	proposed := 0
	crashes := 0
	round := func(drop float64, propose bool) {
		// Deliver.
		msgs := net
		net = nil
		for _, env := range msgs {
			to := nodes[env.m.GetTo()]
			lost := to.down || rng.Float64() < drop
			if !lost {
				_ = to.reps[env.group].rn.Step(env.m)
			}
			// The sender of a snapshot must learn how it went, or its
			// leader waits on that follower for ever.
			if from := nodes[env.m.GetFrom()]; env.m.GetType() == raftpb.MsgSnap && !from.down {
				status := raft.SnapshotFinish
				if lost {
					status = raft.SnapshotFailure
				}
				from.reps[env.group].rn.ReportSnapshot(env.m.GetTo(), status)
			}
		}
		for id := uint64(1); id <= 3; id++ {
			n := nodes[id]
			if n.down {
				continue
			}
			for _, gid := range groups {
				r := n.reps[gid]
				r.rn.Tick()
				if propose && r.rn.BasicStatus().RaftState == raft.StateLeader && rng.Intn(2) == 0 {
					proposed++
					_ = r.rn.Propose([]byte(fmt.Sprintf("g%d-p%d", gid, proposed)))
				}
				for r.rn.HasReady() {
					net = append(net, n.handleReady(t, r, committed)...)
				}
			}
		}
	}
	for i := 0; i < 1500; i++ {
		round(0.05, true)
		if i%100 == 50 {
			// Cut a node's power: only what its WAL fsynced survives, with
			// a torn piece of what it did not.
			n := nodes[uint64(1+rng.Intn(3))]
			if !n.down {
				crashed := n.fs.Crash(func(_ string, unsynced int) int { return rng.Intn(unsynced + 1) })
				_ = n.w.Close()
				n.fs, n.down = crashed, true
				crashes++
			}
		}
		if i%100 == 80 {
			for _, n := range nodes {
				if n.down {
					n.start(t, groups)
				}
			}
		}
	}
	for _, n := range nodes {
		if n.down {
			n.start(t, groups)
		}
	}
	// Settle: no drops, no proposals, until every replica applied all.
	for i := 0; i < 2000; i++ {
		round(0, false)
		done := true
		for _, gid := range groups {
			for _, n := range nodes {
				if !slices.Equal(n.reps[gid].applied, committed[gid]) {
					done = false
				}
			}
		}
		if done {
			break
		}
	}
	for _, gid := range groups {
		if len(committed[gid]) < 50 {
			t.Fatalf("group %d committed only %d entries", gid, len(committed[gid]))
		}
		for _, n := range nodes {
			if got := n.reps[gid].applied; !slices.Equal(got, committed[gid]) {
				for _, m := range nodes {
					r := m.reps[gid]
					f, _ := r.g.FirstIndex()
					l, _ := r.g.LastIndex()
					sn, _ := r.g.Snapshot()
					t.Logf("node %d: applied %d (%d entries) status %+v storage first %d last %d snap %d", m.id, r.appliedIdx, len(r.applied), r.rn.Status(), f, l, sn.GetMetadata().GetIndex())
				}
				t.Fatalf("node %d group %d holds %d entries, %d were committed", n.id, gid, len(got), len(committed[gid]))
			}
		}
	}
	var st Stats
	for _, n := range nodes {
		s := n.w.Stats()
		st.Deleted += s.Deleted
		st.Rewritten += s.Rewritten
		_ = n.w.Close()
	}
	t.Logf("%d proposals, committed %d and %d, %d power cuts, %d segments deleted, %d groups rewritten",
		proposed, len(committed[11]), len(committed[12]), crashes, st.Deleted, st.Rewritten)
}
