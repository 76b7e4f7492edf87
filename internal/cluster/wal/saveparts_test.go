package wal

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/vfs"
)

// TestSavePartsEncodeAsRecord: a save queued in parts writes the bytes
// encodeRecord makes of it (so recovery reads it as before), whatever the
// mix of small and large entries, hard state and snapshot; an entry with
// unknown fields is encoded whole.
func TestSavePartsEncodeAsRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	withUnknown := bigEnt(9, 2, 3000)
	withUnknown.ProtoReflect().SetUnknown([]byte{0x28, 0x01}) // field 5, varint 1
	cases := [][]*raftpb.Entry{
		{bigEnt(1, 1, splitDataFrom)},
		{bigEnt(1, 1, 10), bigEnt(2, 1, 40<<10), bigEnt(3, 1, 0), bigEnt(4, 1, 5000), bigEnt(5, 1, 1)},
		{bigEnt(7, 3, 3000), bigEnt(8, 3, 3000)},
		{withUnknown, bigEnt(10, 2, 4000)},
		{{Index: proto.Uint64(4), Data: bytes.Repeat([]byte{1}, 3000)}}, // no term, no type
	}
	for range 50 {
		var es []*raftpb.Entry
		for i := range 1 + rng.IntN(8) {
			es = append(es, bigEnt(uint64(i+1), 1, rng.IntN(6000)))
		}
		cases = append(cases, es)
	}
	for i, es := range cases {
		for _, r := range []*record{
			{typ: recSave, group: 7, ents: es},
			{typ: recSave, group: 1 << 40, hs: hardState(3, 2, 1), snap: snapshot(1, 1, "state", 1, 2), ents: es},
		} {
			if !splitSave(r) {
				continue
			}
			want, err := encodeRecord(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			rec, parts, err := encodeSaveParts(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			got := append([]byte(nil), rec[recordRoom:]...)
			for _, p := range parts {
				got = append(got, p...)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("case %d: parts make %d bytes, encodeRecord %d, not equal", i, len(got), len(want))
			}
			typ, payload, n, err := parseRecord(got)
			if err != nil || typ != recSave || n != len(got) {
				t.Fatalf("case %d: the parts do not parse as a record: %v", i, err)
			}
			if _, err := decodeRecord(typ, payload); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
		}
	}
}

// TestSavePartsOnDisk: on the operating system's files a batch's parts go
// to one writev; saves with large and small entries, several groups per
// batch, recover whole.
func TestSavePartsOnDisk(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(vfs.Default, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	next := map[uint64]uint64{1: 1, 2: 1, 3: 1}
	for round := range 20 {
		for g := uint64(1); g <= 3; g++ {
			var es []*raftpb.Entry
			for k := range 1 + (round+int(g))%4 {
				es = append(es, bigEnt(next[g], 1, (round*7919+k*3001+int(g)*17)%(40<<10)))
				next[g]++
			}
			wg.Add(1)
			w.Group(g).Save(hardState(1, 1, next[g]-1), es, nil, func(err error) {
				if err != nil {
					t.Error(err)
				}
				wg.Done()
			})
		}
	}
	waitGroup(t, &wg)
	want := map[uint64]string{}
	for g := uint64(1); g <= 3; g++ {
		want[g] = canonical(w.Group(g))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2, err := Open(vfs.Default, dir, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	for g := uint64(1); g <= 3; g++ {
		if got := canonical(w2.Group(g)); got != want[g] {
			t.Fatalf("group %d after reopening:\n got %.300s\nwant %.300s", g, got, want[g])
		}
	}
}

// TestWritevManyParts: more parts than one writev call takes (maxIov) are
// written whole and in order, empty ones skipped.
func TestWritevManyParts(t *testing.T) {
	dir := t.TempDir()
	f, err := vfs.Default.Create(dir + "/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var parts [][]byte
	var want []byte
	for i := range 3000 { // more than maxIov parts
		p := bytes.Repeat([]byte{byte(i)}, i%7)
		parts = append(parts, p)
		want = append(want, p...)
	}
	if err := writev(f.(rawFile), parts); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %v; equal %v", err, bytes.Equal(got, want))
	}
}
