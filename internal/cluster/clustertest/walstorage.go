package clustertest

import (
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

// WALDir is where each node's WAL lives on its file system.
const WALDir = "/raft"

// WALStorage is node storage as in production: one wal.WAL per node, on
// the node's crashable file system, shared by all the node's groups.
// Open is the StorageFactory; a Crash leaves the WAL's files as a power
// cut would, and Restart opens the WAL on them again and restarts the
// groups it recovered (wal.WAL.Groups).
//
// Every node's file system is wrapped in a vfs.Faulty whose injector a
// test sets with SetInjector (a power cut before the k-th file operation,
// a disk error): it stays in force across restarts until replaced.
type WALStorage struct {
	opts wal.Options

	mu    sync.Mutex
	nodes map[NodeID]*walNode
}

type walNode struct {
	w      *wal.WAL // open; nil while the node is down
	inject atomic.Pointer[vfs.Injector]
}

// NewWALStorage returns a WALStorage opening every WAL with opts.
func NewWALStorage(opts wal.Options) *WALStorage {
	return &WALStorage{opts: opts, nodes: map[NodeID]*walNode{}}
}

func (s *WALStorage) node(id NodeID) *walNode {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[id]
	if n == nil {
		n = &walNode{}
		s.nodes[id] = n
	}
	return n
}

// Open is a StorageFactory: it opens node's WAL in WALDir on fs, failing
// as wal.Open does (a *wal.CorruptionError for a damaged log).
func (s *WALStorage) Open(node NodeID, fs *vfs.MemFS) (NodeStorage, error) {
	n := s.node(node)
	faulty := vfs.NewFaulty(fs, func(op vfs.Op, path string, size int) (int, error) {
		if in := n.inject.Load(); in != nil {
			return (*in)(op, path, size)
		}
		return 0, nil
	})
	w, err := wal.Open(faulty, WALDir, s.opts)
	if err != nil {
		return NodeStorage{}, err
	}
	s.mu.Lock()
	n.w = w
	s.mu.Unlock()
	return NodeStorage{
		Open:   func(group uint64) raftnode.Storage { return w.Group(group) },
		Groups: w.Groups,
		Close: func() error {
			s.mu.Lock()
			if n.w == w {
				n.w = nil
			}
			s.mu.Unlock()
			return w.Close()
		},
	}, nil
}

// WAL returns node's open WAL, nil while the node is down.
func (s *WALStorage) WAL(node NodeID) *wal.WAL {
	n := s.node(node)
	s.mu.Lock()
	defer s.mu.Unlock()
	return n.w
}

// SetInjector makes in decide the fate of every file operation of node's
// WAL from now on, this life and the next (nil: none fails). It is called
// on the goroutine doing the operation (the WAL's writer, or Open).
func (s *WALStorage) SetInjector(node NodeID, in vfs.Injector) {
	n := s.node(node)
	if in == nil {
		n.inject.Store(nil)
		return
	}
	n.inject.Store(&in)
}
