package vfs

import (
	"errors"
	"path/filepath"
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
