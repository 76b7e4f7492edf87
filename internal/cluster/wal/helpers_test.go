package wal

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/vfs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ent(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(term),
		Type: raftpb.EntryNormal.Enum(), Data: []byte(fmt.Sprintf("e%d-t%d", index, term))}
}

func ents(from, to, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to && i >= from; i++ { // bounded even at the top of the range
		out = append(out, ent(i, term))
	}
	return out
}

func hardState(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func snapshot(index, term uint64, data string, voters ...uint64) *raftpb.Snapshot {
	return &raftpb.Snapshot{Data: []byte(data), Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(index), Term: proto.Uint64(term),
		ConfState: raftpb.EnsureConfState(&raftpb.ConfState{Voters: voters})}}
}

func openWAL(t testing.TB, fsys vfs.FS, opts Options) *WAL {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	w, err := Open(fsys, "/wal", opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// save runs a Save and waits for its completion.
func save(t testing.TB, g *GroupStorage, hs *raftpb.HardState, es []*raftpb.Entry, snap *raftpb.Snapshot) error {
	t.Helper()
	ch := make(chan error, 1)
	g.Save(hs, es, snap, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("save never completed")
		return nil
	}
}

func mustSave(t testing.TB, g *GroupStorage, hs *raftpb.HardState, es []*raftpb.Entry, snap *raftpb.Snapshot) {
	t.Helper()
	if err := save(t, g, hs, es, snap); err != nil {
		t.Fatal(err)
	}
}

// canonical renders what raft.Storage shows of a group, so a WAL group
// and an etcd raft.MemoryStorage fed the same operations compare equal.
func canonical(s raft.Storage) string {
	var b strings.Builder
	hs, cs, err := s.InitialState()
	if err != nil {
		return "error: " + err.Error()
	}
	fmt.Fprintf(&b, "hs=%d/%d/%d cs=%v/%v ", hs.GetTerm(), hs.GetVote(), hs.GetCommit(), cs.GetVoters(), cs.GetLearners())
	snap, err := s.Snapshot()
	if err != nil {
		return "error: " + err.Error()
	}
	m := snap.GetMetadata()
	fmt.Fprintf(&b, "snap=%d/%d/%q/%v ", m.GetIndex(), m.GetTerm(), snap.GetData(), m.GetConfState().GetVoters())
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	bt, err := s.Term(first - 1)
	fmt.Fprintf(&b, "first=%d last=%d baseterm=%d/%v ents=", first, last, bt, err)
	if last >= first {
		es, err := s.Entries(first, last+1, 1<<62)
		if err != nil {
			return "error: " + err.Error()
		}
		for _, e := range es {
			fmt.Fprintf(&b, "%d/%d/%s ", e.GetIndex(), e.GetTerm(), e.GetData())
		}
	}
	return b.String()
}

// barrier waits until the writer has finished everything queued before
// it, including the segment deletions that follow a batch.
func barrier(t testing.TB, w *WAL) {
	t.Helper()
	ch := make(chan error, 1)
	w.enqueue(pending{done: func(err error) { ch <- err }})
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer never got to the barrier")
	}
}

// dumpLog lists the segments and one group's records, for failure
// messages.
func dumpLog(m *vfs.MemFS, group uint64) string {
	var b strings.Builder
	names, _ := m.List("/wal")
	for _, n := range names {
		raw, _ := vfs.ReadFile(m, "/wal/"+n)
		fmt.Fprintf(&b, "%s (%d bytes)\n", n, len(raw))
		for off := 0; off < len(raw); {
			typ, payload, l, err := parseRecord(raw[off:])
			if err != nil {
				fmt.Fprintf(&b, "  %d: bad\n", off)
				break
			}
			if typ == recBatch {
				fmt.Fprintf(&b, "  %d: batch of %d bytes\n", off, binary.LittleEndian.Uint32(payload))
			} else if r, err := decodeRecord(typ, payload); err != nil {
				fmt.Fprintf(&b, "  %d: undecodable: %v\n", off, err)
			} else if r.group == group {
				m := metaOf(r)
				fmt.Fprintf(&b, "  %d: type %d hs %v snap %v entries %d+%d index %d\n", off, typ, m.hasHS, m.hasSnap, m.first, m.n, m.index)
			}
			off += l
		}
	}
	return b.String()
}
