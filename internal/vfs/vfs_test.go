package vfs

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

func TestCrashKeepsOnlySyncedData(t *testing.T) {
	t.Parallel()
	m := NewCrashable()
	_ = m.MkdirAll("/d")
	f, _ := m.Create("/d/a")
	_, _ = f.Write([]byte("durable"))
	_ = f.Sync()
	_ = m.SyncDir("/d")
	_, _ = f.Write([]byte(" lost"))
	g, _ := m.Create("/d/b") // never dir-synced: vanishes
	_, _ = g.Write([]byte("x"))
	_ = g.Sync()

	after := m.Crash(nil)
	got, err := ReadFile(after, "/d/a")
	if err != nil || string(got) != "durable" {
		t.Fatalf("a = %q, %v", got, err)
	}
	if _, err := after.Open("/d/b"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("b survived without a directory sync: %v", err)
	}
	torn := m.Crash(func(string, int) int { return 3 })
	got, _ = ReadFile(torn, "/d/a")
	if string(got) != "durable lo" {
		t.Fatalf("torn tail %q", got)
	}
}

func TestWriteFileAtomicSurvivesCrash(t *testing.T) {
	t.Parallel()
	for _, fsys := range []FS{NewMem(), Default} {
		dir := "/atomic"
		if fsys == Default {
			dir = t.TempDir()
		}
		_ = fsys.MkdirAll(dir)
		name := filepath.Join(dir, "defs.json")
		if err := WriteFileAtomic(fsys, name, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(fsys, name, []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if m, ok := fsys.(*MemFS); ok {
			fsys = m.Crash(nil)
		}
		got, err := ReadFile(fsys, name)
		if err != nil || string(got) != "v2" {
			t.Fatalf("%T: %q %v", fsys, got, err)
		}
	}
}

func TestFaultyInjectsTornWrites(t *testing.T) {
	t.Parallel()
	m := NewMem()
	_ = m.MkdirAll("/x")
	f := NewFaulty(m, func(op Op, _ string, n int) (int, error) {
		if op == OpWrite && n > 4 {
			return 2, ErrNoSpace
		}
		return 0, nil
	})
	file, _ := f.Create("/x/f")
	if _, err := file.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	n, err := file.Write([]byte("too long"))
	if !errors.Is(err, ErrNoSpace) || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	got, _ := ReadFile(m, "/x/f")
	if string(got) != "okto" {
		t.Fatalf("%q", got)
	}
}

// WriteAt overwrites in place and extends with zeros, on the memory file
// system and the operating system's alike, without moving Write's position.
func TestWriteAtOverwritesAndExtends(t *testing.T) {
	t.Parallel()
	for _, fsys := range []FS{NewMem(), Default} {
		dir := "/writeat"
		if fsys == Default {
			dir = t.TempDir()
		}
		_ = fsys.MkdirAll(dir)
		f, err := fsys.Create(filepath.Join(dir, "f"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte("abcdef"))
		if _, err := f.WriteAt([]byte("XY"), 2); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("Z"), 8); err != nil {
			t.Fatal(err)
		}
		_, _ = f.Write([]byte("!"))
		_ = f.Close()
		got, _ := ReadFile(fsys, filepath.Join(dir, "f"))
		if string(got) != "abXYef!\x00Z" {
			t.Fatalf("%T: %q", fsys, got)
		}
	}
}

// CrashSectors keeps any pattern of the sectors written since the last
// sync, in place or past the synced end, and nothing else.
func TestCrashSectorsKeepsPickedSectorsOfUnsyncedWrites(t *testing.T) {
	t.Parallel()
	m := NewCrashable()
	_ = m.MkdirAll("/d")
	f, _ := m.Create("/d/a")
	_, _ = f.Write(make([]byte, 3*SectorSize)) // zeros, preallocated
	_ = f.Sync()
	_ = m.SyncDir("/d")
	one := bytes.Repeat([]byte{1}, 4*SectorSize)
	_, _ = f.WriteAt(one, SectorSize/2) // sectors 0..4, the last two past the end

	for _, tc := range []struct {
		keep []int
		want func() []byte
	}{
		{nil, func() []byte { return make([]byte, 3*SectorSize) }},
		{[]int{1}, func() []byte {
			b := make([]byte, 3*SectorSize)
			copy(b[SectorSize:], one[:SectorSize])
			return b
		}},
		{[]int{0, 4}, func() []byte { // a hole of zeros where sectors 1-3 were lost
			b := make([]byte, 4*SectorSize+SectorSize/2)
			copy(b[SectorSize/2:SectorSize], one)
			copy(b[4*SectorSize:], one)
			return b
		}},
	} {
		got, _ := ReadFile(m.CrashSectors(func(path string, s int) bool {
			return path == "/d/a" && slices.Contains(tc.keep, s)
		}), "/d/a")
		if !bytes.Equal(got, tc.want()) {
			t.Fatalf("keep %v: got %v", tc.keep, got)
		}
	}
	// Synced, nothing is left to lose.
	_ = f.Sync()
	got, _ := ReadFile(m.CrashSectors(func(string, int) bool { return false }), "/d/a")
	if len(got) != 4*SectorSize+SectorSize/2 || got[SectorSize/2] != 1 || got[0] != 0 {
		t.Fatalf("after sync: %d bytes", len(got))
	}
}

func TestFaultyTearsWriteAt(t *testing.T) {
	t.Parallel()
	m := NewMem()
	_ = m.MkdirAll("/d")
	fsys := NewFaulty(m, func(op Op, _ string, n int) (int, error) {
		if op == OpWrite && n > 4 {
			return 2, ErrNoSpace
		}
		return 0, nil
	})
	f, _ := fsys.Create("/d/a")
	_, _ = f.Write([]byte("abcd"))
	if n, err := f.WriteAt([]byte("XYZWV"), 1); n != 2 || !errors.Is(err, ErrNoSpace) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	got, _ := ReadFile(m, "/d/a")
	if string(got) != "aXYd" {
		t.Fatalf("%q", got)
	}
}
