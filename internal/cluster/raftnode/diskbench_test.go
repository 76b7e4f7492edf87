package raftnode_test

import (
	"io"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

type nopSM struct{}

func (nopSM) Apply(uint64, []byte) any   { return nil }
func (nopSM) Snapshot() ([]byte, error)  { return nil, nil }
func (nopSM) Restore([]byte) error       { return nil }
func (nopSM) LeaderChanged(uint64, bool) {}

// BenchmarkReplicateOnDisk: one group on 3 in-process nodes (memnet, the
// system clock), each with its own WAL on the operating system's disk,
// 1 KiB proposals through the leader with 1,000 in flight. Reports the
// process's CPU (user + system) and the three WALs' fsyncs per proposal:
// the Raft layer's cost per replicated message without a broker around
// it (go test -run X -bench ReplicateOnDisk -benchtime 20000x
// ./internal/cluster/raftnode).
func BenchmarkReplicateOnDisk(b *testing.B) {
	net := memnet.New(clock.Or(nil), 1)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var wals []*wal.WAL
	groups := map[raftnode.NodeID]*raftnode.Group{}
	for id := raftnode.NodeID(1); id <= 3; id++ {
		w, err := wal.Open(vfs.Default, b.TempDir(), wal.Options{Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		wals = append(wals, w)
		ep := net.Endpoint(id)
		h := raftnode.NewHost(raftnode.HostConfig{
			ID: id, Transport: ep, Logger: quiet,
			SnapshotEntries: 1 << 40,
			NewStorage:      func(g uint64) raftnode.Storage { return w.Group(g) },
		})
		ep.SetHandler(h)
		defer w.Close()
		defer h.Close()
		g, err := h.Start(1, []raftnode.NodeID{1, 2, 3}, nil, nopSM{})
		if err != nil {
			b.Fatal(err)
		}
		groups[id] = g
	}
	groups[1].CampaignFirst()
	for deadline := time.Now().Add(20 * time.Second); !groups[1].IsLeader(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no leader")
		}
	}
	payload := make([]byte, 1024)
	sem := make(chan struct{}, 1000)
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
	fsyncs := func() (n uint64) {
		for _, w := range wals {
			n += w.Stats().Fsyncs
		}
		return n
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	f0, c0 := fsyncs(), cpu()
	b.ResetTimer()
	for range b.N {
		sem <- struct{}{}
		wg.Add(1)
		groups[1].ProposeAsync(payload, done)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpu()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(fsyncs()-f0)/float64(b.N), "fsyncs/op")
	if failed != nil {
		b.Fatalf("a proposal failed: %v", failed)
	}
}
