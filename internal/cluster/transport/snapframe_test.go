package transport

import (
	"bytes"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapMsg is a MsgSnap from → to carrying a snapshot of data.
func snapMsg(from, to uint64, data []byte) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(),
		From: proto.Uint64(from),
		To:   proto.Uint64(to),
		Term: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
			Index: proto.Uint64(100), Term: proto.Uint64(1),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}},
	}
}

// TestSnapshotOverMaxFrame (review7 F6): a Raft batch carrying a snapshot
// may exceed MaxFrame, up to MaxSnapshotFrame, and arrives intact on the
// same connection — before, a leader could not send a follower behind
// its log a snapshot over 64 MiB (a quorum queue with that much waiting),
// dropped it at every retry, and the follower never caught up. Other
// frames keep MaxFrame, and a snapshot over MaxSnapshotFrame is dropped
// at the sender.
func TestSnapshotOverMaxFrame(t *testing.T) {
	t.Parallel()
	small := func(c *TCPConfig) { c.MaxQueueBytes = 1 << 20; c.MaxFrame = 1 << 20; c.MaxSnapshotFrame = 8 << 20 }
	n1 := startNode(t, 1, "", small)
	n2 := startNode(t, 2, "", small)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
	big := bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16)
	n1.SendRaft(2, 8, []*raftpb.Message{msg(1, 2, 1, nil), snapMsg(1, 2, big)})
	waitFor(t, "snapshot over MaxFrame", n2.rec.signal, func() bool { return n2.rec.count(1, 8) == 2 })
	n2.rec.mu.Lock()
	got := n2.rec.raft[[2]uint64{1, 8}][1].GetSnapshot().GetData()
	n2.rec.mu.Unlock()
	if !bytes.Equal(got, big) {
		t.Fatalf("snapshot arrived with %d bytes, want %d equal", len(got), len(big))
	}
	if s := n2.Stats(); s.ProtocolErrors != 0 || !connected(n2, 1) {
		t.Fatalf("receiver after a snapshot over MaxFrame: %d protocol errors, connected %v", s.ProtocolErrors, connected(n2, 1))
	}

	// An append of the same size keeps MaxFrame.
	n1.SendRaft(2, 9, []*raftpb.Message{msg(1, 2, 1, big)})
	if line := n1.log.lineWith("larger than the frame limit", "group=9"); line == "" {
		t.Fatal("an append over MaxFrame was not dropped")
	}
	// A snapshot over MaxSnapshotFrame is dropped at the sender.
	n1.SendRaft(2, 10, []*raftpb.Message{snapMsg(1, 2, make([]byte, 9<<20))})
	if line := n1.log.lineWith("larger than the frame limit", "group=10"); line == "" {
		t.Fatal("a snapshot over MaxSnapshotFrame was not dropped")
	}
	if s := n1.Stats().Peers[2]; s.Dropped != 2 || !s.Connected {
		t.Fatalf("after two oversized batches: %+v", s)
	}
}

// TestSnapshotFrameLimits: only a Raft batch marked as carrying a
// snapshot gets MaxSnapshotFrame; a notify or request of the same kind
// number, or an unmarked Raft batch, keeps MaxFrame.
func TestSnapshotFrameLimits(t *testing.T) {
	const maxFrame, maxSnap = 1 << 10, 1 << 20
	for _, c := range []struct {
		typ, kind uint8
		len       uint32
		ok        bool
	}{
		{frameRaft, raftSnapshot, maxSnap, true},
		{frameRaft, raftSnapshot, maxSnap + 1, false},
		{frameRaft, 0, maxFrame, true},
		{frameRaft, 0, maxFrame + 1, false},
		{frameNotify, raftSnapshot, maxFrame + 1, false},
		{frameRequest, raftSnapshot, maxFrame + 1, false},
	} {
		_, err := parseHeader(appendHeader(nil, header{typ: c.typ, kind: c.kind, len: c.len}), maxFrame, maxSnap)
		if (err == nil) != c.ok {
			t.Errorf("frame type %d kind %d of %d bytes: err %v, want ok %v", c.typ, c.kind, c.len, err, c.ok)
		}
	}
}
