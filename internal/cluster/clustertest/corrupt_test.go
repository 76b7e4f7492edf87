package clustertest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

// TestWALCorruptRecordRefusesStart damages one record (its CRC no longer
// holds) in the middle of a crashed node's WAL — the leader's, or a
// follower's: the node refuses to start with a *wal.CorruptionError
// naming the segment file and the offset of the damaged batch, and the
// other two nodes elect if need be and keep serving.
func TestWALCorruptRecordRefusesStart(t *testing.T) {
	for _, role := range []string{"leader", "follower"} {
		t.Run(role, func(t *testing.T) {
			ws := NewWALStorage(wal.Options{ // one segment: the damage is in the active one
				Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			c := New(t, 3, Options{Storage: ws.Open})
			leader := c.WaitLeader(1, nil, wait)
			victim := leader
			if role == "follower" {
				victim = others(c, leader)[0]
			}
			acked := proposeAll(t, c, leader, "before", 20)
			c.WaitApplied(1, nil, acked, wait)
			c.Crash(victim)
			path, off := corruptMiddleRecord(t, c.FS(victim))

			for range 2 { // refused again: nothing was dropped to make it start
				err := c.TryRestart(victim)
				var ce *wal.CorruptionError
				if !errors.As(err, &ce) {
					t.Fatalf("restart on a WAL with a corrupt record: %v, want a *wal.CorruptionError", err)
				}
				if ce.Path != path || ce.Offset != off {
					t.Fatalf("corruption reported at %s offset %d, want %s offset %d", ce.Path, ce.Offset, path, off)
				}
				if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("offset %d", off)) {
					t.Fatalf("error %q does not name the file and offset", msg)
				}
				if c.Host(victim) != nil {
					t.Fatal("the node started on a corrupt WAL")
				}
				t.Logf("refused: %v", err)
			}

			rest := others(c, victim)
			more := proposeAll(t, c, 0, "after", 20) // through whichever of the two leads
			c.WaitApplied(1, rest, append(acked, more...), wait)
			c.CheckNoDuplicates(1)
			c.CheckElections()
		})
	}
}

// corruptMiddleRecord flips a byte inside the first record of the middle
// batch of the node's last WAL segment (so valid batches follow it) and
// returns the segment's path and the batch's offset.
func corruptMiddleRecord(t *testing.T, fs *vfs.MemFS) (string, int64) {
	t.Helper()
	names, err := fs.List(WALDir)
	if err != nil || len(names) == 0 {
		t.Fatalf("WAL directory: %v %v", names, err)
	}
	path := filepath.Join(WALDir, names[len(names)-1])
	raw, err := vfs.ReadFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	// A batch: a header record (length u32 | CRC u32 | type 1 | records'
	// length u32), then its records.
	const batchHeader = 4 + 4 + 1 + 4
	var batches []int
	for off := 0; off+batchHeader <= len(raw); {
		if raw[off+8] != 1 {
			t.Fatalf("%s: no batch header at offset %d", path, off)
		}
		batches = append(batches, off)
		off += batchHeader + int(binary.LittleEndian.Uint32(raw[off+9:]))
	}
	if len(batches) < 5 {
		t.Fatalf("%s holds %d batches, want at least 5", path, len(batches))
	}
	off := batches[len(batches)/2]
	f, err := fs.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	at := int64(off + batchHeader + 9) // the first record's payload: its group id
	if _, err := f.WriteAt([]byte{raw[at] ^ 0x40}, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return path, int64(off)
}
