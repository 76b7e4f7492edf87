package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// batchStarts returns the offsets of the batches in a segment.
func batchStarts(t *testing.T, raw []byte) []int {
	t.Helper()
	var out []int
	for off := 0; off < len(raw); {
		_, payload, n, err := parseRecord(raw[off:])
		if err != nil {
			t.Fatalf("test segment unreadable at %d", off)
		}
		out = append(out, off)
		off += n + int(binary.LittleEndian.Uint32(payload))
	}
	return out
}

func writeFile(t *testing.T, m *vfs.MemFS, path string, data []byte) {
	t.Helper()
	f, err := m.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = f.Sync()
	_ = f.Close()
	_ = m.SyncDir("/wal")
}

// tenBatches writes ten single-save batches of two groups into one
// segment and returns the file system after a clean shutdown, the
// segment's path and bytes.
func tenBatches(t *testing.T) (*vfs.MemFS, string, []byte) {
	t.Helper()
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	for i := uint64(1); i <= 5; i++ {
		mustSave(t, w.Group(1), hardState(1, 1, i-1), ents(i, i, 1), nil)
		mustSave(t, w.Group(2), hardState(1, 1, i-1), ents(i, i, 1), nil)
	}
	_ = w.Close()
	m = m.Crash(nil)
	path := "/wal/" + segName(1)
	raw, err := vfs.ReadFile(m, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(batchStarts(t, raw)); n != 10 {
		t.Fatalf("%d batches, want 10", n)
	}
	return m, path, raw
}

// TestCorruptionInTheMiddleIsReported: a damaged byte in any batch but the
// last — header or record, CRC or length — is corruption: Open fails
// naming the file and the batch's offset, and drops nothing silently.
func TestCorruptionInTheMiddleIsReported(t *testing.T) {
	_, path, raw := tenBatches(t)
	starts := batchStarts(t, raw)
	for b := 0; b < 9; b++ {
		end := starts[b+1]
		for _, at := range []int{starts[b], starts[b] + 3, starts[b] + 6, starts[b] + batchHeaderLen + 2, end - 1} {
			m := vfs.NewMem()
			_ = m.MkdirAll("/wal")
			bad := append([]byte(nil), raw...)
			bad[at] ^= 0x5a
			writeFile(t, m, path, bad)
			_, err := Open(m, "/wal", Options{Logger: quiet})
			var ce *CorruptionError
			if !errors.As(err, &ce) {
				t.Fatalf("byte %d of batch %d flipped: Open returned %v, want a CorruptionError", at, b, err)
			}
			if ce.Path != path || ce.Offset != int64(starts[b]) {
				t.Fatalf("byte %d of batch %d flipped: error names %s at %d, want %s at %d", at, b, ce.Path, ce.Offset, path, starts[b])
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("offset %d", starts[b])) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file and offset", err)
			}
		}
	}
}

// TestDamagedLastBatchIsATornWrite: damage confined to the final batch —
// cut short anywhere, or a flipped byte, or zeros past its end — is a
// torn write: the batch is cut off, everything before it recovers, and
// the log goes on from there.
func TestDamagedLastBatchIsATornWrite(t *testing.T) {
	_, path, raw := tenBatches(t)
	starts := batchStarts(t, raw)
	last := starts[9]
	variants := map[string][]byte{}
	for cut := last + 1; cut < len(raw); cut += 7 {
		variants[fmt.Sprintf("cut at %d", cut)] = raw[:cut]
	}
	for _, at := range []int{last, last + 5, last + batchHeaderLen + 1, len(raw) - 1} {
		bad := append([]byte(nil), raw...)
		bad[at] ^= 1
		variants[fmt.Sprintf("byte %d flipped", at)] = bad
	}
	variants["zeros after the last batch"] = append(append([]byte(nil), raw...), make([]byte, 4096)...)
	variants["zeros over the last batch"] = append(append([]byte(nil), raw[:last]...), make([]byte, len(raw)-last)...)
	for name, data := range variants {
		m := vfs.NewMem()
		_ = m.MkdirAll("/wal")
		writeFile(t, m, path, data)
		w, err := Open(m, "/wal", Options{Logger: quiet})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Batch 10 was group 2's fifth save; everything before it stays.
		g1, g2 := w.Group(1), w.Group(2)
		l1, _ := g1.LastIndex()
		l2, _ := g2.LastIndex()
		keep := 4
		if name == "zeros after the last batch" {
			keep = 5
		}
		if l1 != 5 || l2 != uint64(keep) {
			t.Fatalf("%s: recovered groups up to %d and %d, want 5 and %d", name, l1, l2, keep)
		}
		mustSave(t, g2, hardState(1, 1, 4), ents(uint64(keep)+1, uint64(keep)+1, 2), nil)
		_ = w.Close()
		w2, err := Open(m.Crash(nil), "/wal", Options{Logger: quiet})
		if err != nil {
			t.Fatalf("%s: reopening after writing past the cut: %v", name, err)
		}
		if l, _ := w2.Group(2).LastIndex(); l != uint64(keep)+1 {
			t.Fatalf("%s: after the second restart group 2 ends at %d, want %d", name, l, keep+1)
		}
		_ = w2.Close()
	}
}

// TestDamageInASealedSegmentIsReported: a sealed segment was fsynced
// whole before the next began, so even damage in its final batch is
// corruption; so is a missing segment between two others.
func TestDamageInASealedSegmentIsReported(t *testing.T) {
	m := vfs.NewMem()
	w := openWAL(t, m, Options{SegmentSize: 256, MaxSegments: 100})
	for i := uint64(1); i <= 30; i++ {
		mustSave(t, w.Group(1), hardState(1, 1, i-1), ents(i, i, 1), nil)
	}
	_ = w.Close()
	names := segFiles(t, m)
	if len(names) < 4 {
		t.Fatalf("only %d segments", len(names))
	}
	sealed := "/wal/" + names[1]
	raw, _ := vfs.ReadFile(m, sealed)
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1
	m1 := m.Crash(nil)
	writeFile(t, m1, sealed, bad)
	var ce *CorruptionError
	if _, err := Open(m1, "/wal", Options{Logger: quiet}); !errors.As(err, &ce) || ce.Path != sealed {
		t.Fatalf("damaged sealed segment: %v, want a CorruptionError naming %s", err, sealed)
	}
	m2 := m.Crash(nil)
	_ = m2.Remove("/wal/" + names[2])
	if _, err := Open(m2, "/wal", Options{Logger: quiet}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing segment: %v, want a CorruptionError", err)
	}
}

// TestUndecodableRecordIsCorruption: a record whose CRC holds but whose
// contents do not decode is not a torn write, even at the tail.
func TestUndecodableRecordIsCorruption(t *testing.T) {
	m := vfs.NewMem()
	_ = m.MkdirAll("/wal")
	rec, start := beginRecord(nil, recSave)
	rec = append(rec, 1, 2, 3) // a group id cut short
	sealRecord(rec, start)
	batch := append(make([]byte, batchHeaderLen), rec...)
	putBatchHeader(batch, len(rec))
	writeFile(t, m, "/wal/"+segName(1), batch)
	var ce *CorruptionError
	if _, err := Open(m, "/wal", Options{Logger: quiet}); !errors.As(err, &ce) || ce.Offset != batchHeaderLen {
		t.Fatalf("Open: %v, want a CorruptionError at offset %d", err, batchHeaderLen)
	}
}
