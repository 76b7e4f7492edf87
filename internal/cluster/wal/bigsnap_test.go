package wal

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// setRecordLimits lowers the record limits for one test (not parallel),
// so records "over the limit" cost kilobytes, not 256 MiB.
func setRecordLimits(t *testing.T, plain, snap int) {
	t.Helper()
	oldPlain, oldSnap := maxRecord, maxSnapRecord
	maxRecord, maxSnapRecord = plain, snap
	t.Cleanup(func() { maxRecord, maxSnapRecord = oldPlain, oldSnap })
}

// patterned returns n bytes that are not all alike, so a snapshot read
// back from the wrong place or cut short does not compare equal.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}

// TestSnapshotOverTheRecordLimit (review7 F6): a snapshot larger than the
// limit of an ordinary record is stored — by CreateSnapshot (in parts or
// in one buffer) and by a Save carrying a leader's snapshot — and
// recovered after a power cut. Before, such a snapshot (a quorum queue
// whose state was over 256 MiB) could never be stored: the log was never
// compacted and the WAL grew without bound. Records without a snapshot
// keep the ordinary limit, and a snapshot over the snapshot limit fails
// cleanly, leaving the group as it was.
func TestSnapshotOverTheRecordLimit(t *testing.T) {
	setRecordLimits(t, 16<<10, 1<<20)
	m := vfs.NewMem()
	w := openWAL(t, m, Options{})
	g := w.Group(1)
	mustSave(t, g, hardState(1, 1, 10), ents(1, 10, 1), nil)
	small := patterned(40<<10, 1) // over maxRecord, under splitSnapshotFrom: one buffer
	if _, err := g.CreateSnapshot(5, nil, small); err != nil {
		t.Fatalf("snapshot of %d bytes (record limit %d): %v", len(small), maxRecord, err)
	}
	big := patterned(300<<10, 2) // queued in parts
	if _, err := g.CreateSnapshot(8, nil, big); err != nil {
		t.Fatalf("snapshot of %d bytes (record limit %d): %v", len(big), maxRecord, err)
	}
	if err := g.Compact(8); err != nil {
		t.Fatal(err)
	}
	// A follower saving its leader's snapshot.
	g2 := w.Group(2)
	leader := patterned(200<<10, 3)
	mustSave(t, g2, hardState(2, 1, 20), nil, snapshot(20, 2, string(leader), 1, 2, 3))

	// Entries keep the ordinary limit.
	g3 := w.Group(3)
	e := ents(1, 1, 1)
	e[0].Data = patterned(20<<10, 4)
	if err := save(t, g3, hardState(1, 1, 1), e, nil); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("a save of %d bytes of entries (limit %d): %v, want refused", len(e[0].Data), maxRecord, err)
	}
	// A snapshot over the snapshot limit fails and changes nothing.
	if _, err := g.CreateSnapshot(10, nil, patterned(2<<20, 5)); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("a snapshot over the snapshot limit: %v, want refused", err)
	}
	if s, _ := g.Snapshot(); s.GetMetadata().GetIndex() != 8 || !bytes.Equal(s.GetData(), big) {
		t.Fatalf("after a refused snapshot the group holds the snapshot at %d", s.GetMetadata().GetIndex())
	}
	// The group goes on.
	mustSave(t, g, hardState(1, 1, 11), ents(11, 11, 1), nil)

	w2 := openWAL(t, m.Crash(nil), Options{})
	defer func() { _ = w2.Close() }()
	r := w2.Group(1)
	s, _ := r.Snapshot()
	if s.GetMetadata().GetIndex() != 8 || !bytes.Equal(s.GetData(), big) {
		t.Fatalf("recovered snapshot at %d with %d bytes, want 8 with %d", s.GetMetadata().GetIndex(), len(s.GetData()), len(big))
	}
	if fi, _ := r.FirstIndex(); fi != 9 {
		t.Fatalf("first index %d after recovery, want 9", fi)
	}
	if li, _ := r.LastIndex(); li != 11 {
		t.Fatalf("last index %d after recovery, want 11", li)
	}
	s2, _ := w2.Group(2).Snapshot()
	if s2.GetMetadata().GetIndex() != 20 || !bytes.Equal(s2.GetData(), leader) {
		t.Fatalf("recovered leader's snapshot at %d with %d bytes", s2.GetMetadata().GetIndex(), len(s2.GetData()))
	}
	_ = w.Close()
}
