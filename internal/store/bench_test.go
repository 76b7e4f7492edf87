package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tern-broker/tern/internal/vfs"
)

// BenchmarkDiskFsync measures this disk's own latency for appending 1 KiB
// and fsyncing it, the floor under any durable confirm. It writes in
// TERN_BENCH_DIR (default: the test's temp dir).
func BenchmarkDiskFsync(b *testing.B) {
	dir := os.Getenv("TERN_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	f, err := vfs.Default.Create(filepath.Join(dir, "fsync-bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close(); _ = os.Remove(filepath.Join(dir, "fsync-bench")) }()
	buf := make([]byte, 1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
