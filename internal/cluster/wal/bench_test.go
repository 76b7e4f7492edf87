package wal

import (
	"bytes"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/vfs"
)

// BenchmarkSave: 100 groups save concurrently on the operating system's
// file system, each waiting for its save's fsync before the next (as a
// group's goroutine does), one 1 KiB entry and a hard state per save.
// Reports entries per fsync (the group commit) and ns per entry.
func BenchmarkSave(b *testing.B) {
	const groups = 100
	w, err := Open(vfs.Default, b.TempDir(), Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	data := make([]byte, 1024)
	per := b.N/groups + 1
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for gid := uint64(1); gid <= groups; gid++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := w.Group(gid)
			done := make(chan error, 1)
			for i := uint64(1); i <= uint64(per); i++ {
				e := &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Data: data}
				g.Save(hardState(1, 1, i-1), []*raftpb.Entry{e}, nil, func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	st := w.Stats()
	if st.Fsyncs > 0 {
		b.ReportMetric(float64(st.Entries)/float64(st.Fsyncs), "entries/fsync")
		b.ReportMetric(float64(st.SyncTime.Microseconds())/float64(st.Fsyncs), "µs/fsync")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Entries), "ns/entry")
}

// BenchmarkCreateSnapshot measures recording a 4 MiB state machine
// snapshot (a quorum queue with a few thousand messages), the part of a
// group's snapshot that runs on the group's goroutine after the state
// machine serialized itself: the copies and the wait for the fsync, on
// the operating system's file system.
func BenchmarkCreateSnapshot(b *testing.B) {
	w, err := Open(vfs.Default, b.TempDir(), Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	g := w.Group(7)
	state := bytes.Repeat([]byte("m"), 4<<20)
	b.SetBytes(int64(len(state)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		idx := uint64(i + 1)
		if err := saveSync(g, &raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(idx)},
			[]*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(idx), Data: []byte("e")}}); err != nil {
			b.Fatal(err)
		}
		if _, err := g.CreateSnapshot(idx, nil, state); err != nil {
			b.Fatal(err)
		}
	}
}

func saveSync(g *GroupStorage, hs *raftpb.HardState, ents []*raftpb.Entry) error {
	ch := make(chan error, 1)
	g.Save(hs, ents, nil, func(err error) { ch <- err })
	return <-ch
}
