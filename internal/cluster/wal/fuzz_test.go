package wal

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// seedSegment returns the single segment a small workload leaves.
func seedSegment(t testing.TB, groups, ops int) []byte {
	m := vfs.NewMem()
	w, err := Open(m, "/wal", Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	wls := workloads(groups, ops)
	acked := make([]atomic.Int64, len(wls))
	for i := range wls {
		if err := runGroup(w, wls[i], &acked[i], false); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Close()
	raw, err := vfs.ReadFile(m, "/wal/"+segName(1))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzRecovery opens arbitrary bytes as the log's segment. Recovery must
// never panic; when it succeeds every group must read back consistently,
// take a new save, and recover to the same state again (recovering what
// recovery kept changes nothing).
func FuzzRecovery(f *testing.F) {
	seed := seedSegment(f, 2, 12)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add(seed[:batchHeaderLen+3])
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	flipped := append([]byte(nil), seed...)
	flipped[len(flipped)/3] ^= 0xff
	f.Add(flipped)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecovery(t, data)
	})
}

// FuzzRecords frames arbitrary record payloads with valid lengths and
// CRCs, so the fuzzer reaches the record decoder and the replay of
// well-framed but meaningless records, which FuzzRecovery's damaged
// frames rarely get past. Input: repeated type byte | length uint16 |
// payload; every third record closes a batch.
func FuzzRecords(f *testing.F) {
	seed := seedSegment(f, 2, 12)
	var in []byte
	for off := 0; off < len(seed); {
		typ, payload, n, err := parseRecord(seed[off:])
		if err != nil {
			break
		}
		off += n
		if typ == recBatch || len(payload) > 0xffff {
			continue
		}
		in = append(in, typ, byte(len(payload)), byte(len(payload)>>8))
		in = append(in, payload...)
	}
	f.Add(in)
	f.Add(in[:len(in)/2])
	f.Add([]byte{recRemove, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var seg, batch []byte
		flush := func() {
			if len(batch) == 0 {
				return
			}
			hdr := make([]byte, batchHeaderLen)
			putBatchHeader(hdr, len(batch))
			seg = append(append(seg, hdr...), batch...)
			batch = batch[:0]
		}
		for k := 0; len(data) >= 3; k++ {
			typ, n := data[0], int(data[1])|int(data[2])<<8
			data = data[3:]
			n = min(n, len(data))
			var start int
			batch, start = beginRecord(batch, typ)
			batch = append(batch, data[:n]...)
			sealRecord(batch, start)
			data = data[n:]
			if k%3 == 2 {
				flush()
			}
		}
		flush()
		checkRecovery(t, seg)
	})
}

// checkRecovery opens data as the only segment and checks what recovery
// makes of it.
func checkRecovery(t *testing.T, data []byte) {
	m := vfs.NewMem()
	_ = m.MkdirAll("/wal")
	fl, _ := m.Create("/wal/" + segName(1))
	_, _ = fl.Write(data)
	_ = fl.Sync()
	_ = fl.Close()
	_ = m.SyncDir("/wal")
	w, err := Open(m, "/wal", Options{Logger: quiet})
	if err != nil {
		var ce *CorruptionError
		if !errors.As(err, &ce) {
			t.Fatalf("recovery failed with %v, not a CorruptionError", err)
		}
		return
	}
	want := map[uint64]string{}
	for _, id := range w.Groups() {
		g := w.Group(id)
		first, _ := g.FirstIndex()
		last, _ := g.LastIndex()
		if first > last+1 {
			t.Fatalf("group %d: first %d > last %d + 1", id, first, last)
		}
		if _, err := g.Term(first - 1); err != nil {
			t.Fatalf("group %d: no term for the base: %v", id, err)
		}
		if last >= first {
			es, err := g.Entries(first, last+1, 1<<62)
			if err != nil || uint64(len(es)) != last-first+1 {
				t.Fatalf("group %d: Entries(%d, %d) = %d entries, %v", id, first, last+1, len(es), err)
			}
			for i, e := range es {
				if e.GetIndex() != first+uint64(i) {
					t.Fatalf("group %d: entry %d has index %d", id, first+uint64(i), e.GetIndex())
				}
			}
		}
		term, _ := g.Term(last)
		if err := save(t, g, hardState(term+1, 1, 0), ents(last+1, last+1, term+1), nil); err != nil {
			t.Fatalf("group %d: save after recovery: %v", id, err)
		}
		want[id] = canonical(g)
	}
	_ = w.Close()
	w2, err := Open(m.Crash(nil), "/wal", Options{Logger: quiet})
	if err != nil {
		t.Fatalf("recovering the recovered log: %v", err)
	}
	defer w2.Close()
	if len(w2.Groups()) != len(want) {
		t.Fatalf("groups %v after the second recovery, want %d", w2.Groups(), len(want))
	}
	for id, s := range want {
		if got := canonical(w2.Group(id)); got != s {
			t.Fatalf("group %d after the second recovery:\n got %s\nwant %s", id, got, s)
		}
	}
}
