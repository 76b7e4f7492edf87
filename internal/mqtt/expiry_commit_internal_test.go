package mqtt

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// gatedFS counts the session file's writes and holds the first until
// released.
type gatedFS struct {
	vfs.FS
	writes  atomic.Int64
	started chan struct{}
	release chan struct{}
}

func (g *gatedFS) Create(name string) (vfs.File, error) {
	if strings.HasSuffix(name, ".tmp") && g.writes.Add(1) == 1 {
		close(g.started)
		<-g.release
	}
	return g.FS.Create(name)
}

// A storm of connects of 5.0 sessions with an expiry shares writes of the
// session file: while one write runs, every change made meanwhile waits
// for the next, which carries them all; each caller returns once its
// change is in the file.
func TestSessionExpiryWritesAreGroupCommitted(t *testing.T) {
	m := vfs.NewMem()
	_ = m.MkdirAll("/d")
	g := &gatedFS{FS: m, started: make(chan struct{}), release: make(chan struct{})}
	e, err := newSessionExpiry(g, "/d/mqtt-sessions.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	connect := func(i int) {
		defer wg.Done()
		errs <- e.connected(fmt.Sprintf("c%d", i), 60)
	}
	wg.Add(1)
	go connect(0)
	<-g.started // the first write is running, with e.mu let go
	for i := 1; i < n; i++ {
		wg.Add(1)
		go connect(i)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.mu.Lock()
		all := e.version == n
		e.mu.Unlock()
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the connects did not all register their change while a write ran")
		}
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if w := g.writes.Load(); w != 2 {
		t.Errorf("%d connects made %d writes of the session file, want 2 (the first, then one for the rest)", n, w)
	}
	back, err := newSessionExpiry(m, "/d/mqtt-sessions.bin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.entries) != n {
		t.Fatalf("the file holds %d sessions, want %d", len(back.entries), n)
	}
}

// BenchmarkSessionExpiryConnect: connects of 5.0 sessions with an expiry,
// 64 at a time, on the real file system with 1,000 sessions in the file.
// "group" is connected (group commit); "each" writes the file under the
// lock for every change, as before.
//
//	go test ./internal/mqtt -run X -bench SessionExpiryConnect -benchtime 2000x
func BenchmarkSessionExpiryConnect(b *testing.B) {
	for _, mode := range []string{"group", "each"} {
		b.Run(mode, func(b *testing.B) {
			e, err := newSessionExpiry(vfs.Default, b.TempDir()+"/mqtt-sessions.bin", nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 1000 {
				e.entries[fmt.Sprintf("resident-%d", i)] = expiryEntry{interval: 3600}
			}
			var next atomic.Int64
			b.SetParallelism(64)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("storm-%d", next.Add(1))
					if mode == "group" {
						if err := e.connected(id, 60); err != nil {
							b.Error(err)
						}
						continue
					}
					e.mu.Lock()
					e.entries[id] = expiryEntry{interval: 60}
					err := e.saveLocked()
					e.mu.Unlock()
					if err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "connects/s")
		})
	}
}
