package clustertest

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// BenchmarkProposeAsync measures committed-and-applied proposals per
// second through the leader of a 3-node in-process group on memnet
// (MemoryStorage: no fsync), with up to 1,024 proposals in flight.
func BenchmarkProposeAsync(b *testing.B) {
	// Time runs at its real speed here (one 100 ms tick per 100 ms): the
	// tests' 20× faster clock makes a saturated leader on a shared 2-core
	// machine miss heartbeats and lose leadership, which measures the
	// machine, not the code.
	// No snapshots: ListSM's snapshot is the whole list in JSON, O(entries
	// so far), which would measure the test state machine.
	c := New(b, 3, Options{LogLevel: slog.LevelWarn, TickEvery: 100 * time.Millisecond,
		Host: func(cfg *raftnode.HostConfig) { cfg.SnapshotEntries = 1 << 40 }})
	leader := c.WaitLeader(1, nil, 20*time.Second)
	g := c.Group(leader, 1)
	payload := bytes.Repeat([]byte("x"), 128)
	sem := make(chan struct{}, 1024)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	done := func(_ any, err error) {
		if err != nil {
			mu.Lock()
			failed = err
			mu.Unlock()
		}
		<-sem
		wg.Done()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sem <- struct{}{}
		wg.Add(1)
		g.ProposeAsync(payload, done)
	}
	wg.Wait()
	b.StopTimer()
	s := c.Host(leader).Stats()
	if s.CommitLatency.Count > 0 {
		b.ReportMetric(float64(s.CommitLatency.Sum.Microseconds())/float64(s.CommitLatency.Count), "µs-commit-latency")
	}
	if failed != nil {
		b.Fatalf("a proposal failed: %v", failed)
	}
}
