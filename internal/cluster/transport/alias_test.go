package transport

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// aliasSeeds are messages of every shape the fast decoder takes, and some
// it hands to proto.Unmarshal (a snapshot, storage responses).
func aliasSeeds() []*raftpb.Message {
	big := msg(1, 2, 7, bytes.Repeat([]byte("x"), 5000))
	big.Entries = append(big.Entries, &raftpb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(9), Type: raftpb.EntryConfChangeV2.Enum(), Data: []byte{}},
		&raftpb.Entry{})
	big.Commit = proto.Uint64(6)
	big.LogTerm = proto.Uint64(1)
	return []*raftpb.Message{
		big,
		msg(3, 1, 1<<40, nil),
		{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(4), Commit: proto.Uint64(3), Context: []byte("quiet")},
		{Type: raftpb.MsgAppResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Reject: proto.Bool(true), RejectHint: proto.Uint64(17), Index: proto.Uint64(20), LogTerm: proto.Uint64(3)},
		{Type: raftpb.MsgVote.Enum(), Vote: proto.Uint64(2), Context: []byte{}},
		{},
		{Type: raftpb.MsgSnap.Enum(), Snapshot: &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1)}}},
		{Type: raftpb.MsgStorageAppend.Enum(), Responses: []*raftpb.Message{{Type: raftpb.MsgAppResp.Enum()}}},
	}
}

// checkAlias decodes b both ways: when the fast decoder takes it, the
// result must be what proto.Unmarshal makes of it.
func checkAlias(t *testing.T, b []byte) (took bool) {
	t.Helper()
	var fast raftpb.Message
	if !decodeMessageAlias(b, &fast) {
		return false
	}
	var slow raftpb.Message
	if err := proto.Unmarshal(b, &slow); err != nil {
		t.Fatalf("fast decoder took bytes proto.Unmarshal refuses (%v): %x", err, b)
	}
	if !proto.Equal(&fast, &slow) {
		t.Fatalf("fast decode %v, proto.Unmarshal %v, of %x", &fast, &slow, b)
	}
	return true
}

// TestDecodeMessageAliasMatchesProto: every seed, and random messages of
// the shapes appends and their responses have, decode as proto.Unmarshal
// decodes them; snapshots and storage messages are left to it.
func TestDecodeMessageAliasMatchesProto(t *testing.T) {
	for i, m := range aliasSeeds() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		took := checkAlias(t, b)
		if want := m.Snapshot == nil && m.Responses == nil; took != want {
			t.Errorf("seed %d (%v): fast decoder took it: %v, want %v", i, m.GetType(), took, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	u := func() *uint64 { return proto.Uint64(rng.Uint64() >> rng.IntN(64)) }
	for range 2000 {
		m := &raftpb.Message{Type: raftpb.MessageType(rng.IntN(20)).Enum()}
		for _, f := range []**uint64{&m.To, &m.From, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint, &m.Vote} {
			if rng.IntN(2) == 0 {
				*f = u()
			}
		}
		if rng.IntN(3) == 0 {
			m.Reject = proto.Bool(rng.IntN(2) == 0)
		}
		if rng.IntN(3) == 0 {
			m.Context = make([]byte, rng.IntN(20))
		}
		for range rng.IntN(5) {
			e := &raftpb.Entry{Term: u(), Index: u(), Type: raftpb.EntryType(rng.IntN(3)).Enum(), Data: make([]byte, rng.IntN(3000))}
			for i := range e.Data {
				e.Data[i] = byte(rng.Uint32())
			}
			m.Entries = append(m.Entries, e)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !checkAlias(t, b) {
			t.Fatalf("fast decoder refused %v", m)
		}
	}
}

// TestLargeRaftFrameEntriesAliasItsOwnBuffer: a Raft frame of aliasFrom
// bytes or more is read into a buffer of its own and its entries point
// into it; the next frame does not overwrite them. A small frame is
// decoded from the reused buffer, its entries copied.
func TestLargeRaftFrameEntriesAliasItsOwnBuffer(t *testing.T) {
	a := bytes.Repeat([]byte("a"), 2*aliasFrom)
	small := []byte("small entry")
	var stream []byte
	stream, _ = appendRaftBatch(stream, 5, []*raftpb.Message{msg(1, 2, 1, a)})
	stream, _ = appendRaftBatch(stream, 5, []*raftpb.Message{msg(1, 2, 2, bytes.Repeat([]byte("b"), 2*aliasFrom))})
	stream, _ = appendRaftBatch(stream, 5, []*raftpb.Message{msg(1, 2, 3, small)})
	fr := frameReader{r: bufio.NewReader(bytes.NewReader(stream)), maxFrame: 1 << 20}
	var first []*raftpb.Message
	for i := range 3 {
		_, body, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 2; fr.own != want {
			t.Fatalf("frame %d: own buffer %v, want %v", i, fr.own, want)
		}
		msgs, err := decodeRaftBatch(body, fr.own)
		if err != nil {
			t.Fatal(err)
		}
		data := msgs[0].GetEntries()[0].GetData()
		start := uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		p := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
		inside := p >= start && p < start+uintptr(len(body))
		if inside != fr.own {
			t.Fatalf("frame %d: entry data inside the frame buffer: %v, want %v", i, inside, fr.own)
		}
		if i == 0 {
			first = msgs
		}
	}
	if !bytes.Equal(first[0].GetEntries()[0].GetData(), a) {
		t.Fatal("the first frame's entry changed while later frames were read")
	}
}

// FuzzDecodeMessageAlias: for any bytes the fast decoder takes, its result
// is proto.Unmarshal's; it never panics.
func FuzzDecodeMessageAlias(f *testing.F) {
	for _, m := range aliasSeeds() {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0x0f})       // a type out of range
	f.Add([]byte{0x3a, 0x02, 0x08, 0x07})                   // an entry of an unknown type
	f.Add([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}) // a truncated varint
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAlias(t, b)
	})
}
