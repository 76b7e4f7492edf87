package clustertest

import (
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/vfs"
)

// asyncStorage is MemoryStorage whose Save reports durability later, from
// another goroutine, in order — as the node-wide WAL does after its group
// fsync — so the Ready loop's wait for done is exercised.
type asyncStorage struct {
	*raftnode.MemoryStorage
	queue chan func()
}

func (s *asyncStorage) Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot, done func(error)) {
	var err error
	s.MemoryStorage.Save(hs, ents, snap, func(e error) { err = e })
	s.queue <- func() { done(err) }
}

// asyncStorages is a StorageFactory of asyncStorage, one flusher goroutine
// per node; the storages survive a crash whole, as MemoryStorage does.
func asyncStorages() StorageFactory {
	var mu sync.Mutex
	stores := map[NodeID]map[uint64]*raftnode.MemoryStorage{}
	return func(node NodeID, _ *vfs.MemFS) (NodeStorage, error) {
		queue := make(chan func(), 1024)
		stop := make(chan struct{})
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			for {
				select {
				case f := <-queue:
					time.Sleep(50 * time.Microsecond) // an fsync's worth of delay
					f()
				case <-stop:
					return
				}
			}
		}()
		open := func(group uint64) raftnode.Storage {
			mu.Lock()
			defer mu.Unlock()
			if stores[node] == nil {
				stores[node] = map[uint64]*raftnode.MemoryStorage{}
			}
			if stores[node][group] == nil {
				stores[node][group] = raftnode.NewMemoryStorage()
			}
			return &asyncStorage{MemoryStorage: stores[node][group], queue: queue}
		}
		return NodeStorage{Open: open, Close: func() error { close(stop); <-stopped; return nil }}, nil
	}
}

func TestAsyncStorage(t *testing.T) {
	c := New(t, 3, Options{Storage: asyncStorages(), Host: smallSnapshots})
	old := c.WaitLeader(1, nil, wait)
	acked := proposeAll(t, c, old, "a", 40)
	c.Crash(old)
	acked = append(acked, proposeAll(t, c, 0, "b", 40)...)
	c.Restart(old)
	c.WaitApplied(1, nil, acked, wait)
	c.CheckNoDuplicates(1)
	c.CheckElections()
}
