package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// Options configure a WAL. Zero values take the defaults.
type Options struct {
	// SegmentSize is the size at which the active segment is sealed and a
	// new one begun (a batch may run past it). Default 64 MiB.
	SegmentSize int64
	// MaxSegments is how many segments the log may hold before the groups
	// that pin the oldest one have their live state rewritten forward so
	// it can be deleted. Default 4.
	MaxSegments int
	// Logger receives recovery and failure reports. Default slog.Default().
	Logger *slog.Logger
	// OnSync, if set, is called on the writer goroutine after every fsync
	// of a batch with the entries it covered and how long it took (for
	// the tern_raft_wal_* metrics). It must not block.
	OnSync func(entries int, took time.Duration)
}

// ErrClosed is returned for work handed to a closed WAL.
var ErrClosed = errors.New("wal: closed")

// Stats are the WAL's counters since Open.
type Stats struct {
	Fsyncs    uint64        // fsyncs of batches
	Entries   uint64        // Raft entries those fsyncs covered
	Records   uint64        // records written (saves, snapshots, compactions, checkpoints, removals)
	Bytes     uint64        // bytes written
	SyncTime  time.Duration // total time in those fsyncs
	Segments  int           // segment files now
	Deleted   uint64        // segments deleted
	Rewritten uint64        // groups rewritten forward (checkpoint records)
}

// WAL is a node's write-ahead log, shared by all its Raft groups.
type WAL struct {
	fs   vfs.FS
	dir  string
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	cond   *sync.Cond // signals queue non-empty or closing
	groups map[uint64]*GroupStorage
	// retiring: removed groups whose remove record is not yet written;
	// until it is durable their records must stay, so they still pin.
	retiring map[*GroupStorage]bool
	queue    []pending
	closing  bool  // Close was called: the writer drains the queue and stops
	exited   bool  // the writer has stopped: nothing more is queued
	err      error // sticky: a failed write or fsync stops the log
	stopped  chan struct{}

	// Owned by the writer goroutine (and Open before it starts).
	segs       []uint64 // segment ids, ascending; the last is active
	active     vfs.File
	activeSize int64
	buf        []byte     // gathers a batch's small records (writeBatch)
	recs       []*pending // the records of the batch being written
	iov        [][]byte   // a batch's parts for writev (writeBatch)
	maxBatch   int        // maxBatch; tests lower it

	fsyncs, entries, records, bytes, syncNanos, deleted, checkpoints atomic.Uint64
	nsegs                                                            atomic.Int64
}

// pending is a record waiting for the writer, with its completion.
type pending struct {
	g   *GroupStorage
	rec []byte // recordRoom bytes, then the framed record (encodeQueued); nil for a save with nothing to write
	// parts, when set, follow rec on disk: a record queued in parts,
	// its large data not copied (encodeSnapshotParts, encodeSaveParts).
	parts [][]byte
	meta  recMeta
	done  func(error)
}

const segExt = ".wal"

func segName(id uint64) string { return fmt.Sprintf("%020d%s", id, segExt) }

func parseSegName(name string) (uint64, bool) {
	if !strings.HasSuffix(name, segExt) {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
	return n, err == nil && n > 0
}

func (w *WAL) segPath(id uint64) string { return filepath.Join(w.dir, segName(id)) }

// Open opens the WAL in dir, recovering every group recorded there, and
// starts its writer.
func Open(fsys vfs.FS, dir string, opts Options) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	if opts.MaxSegments <= 0 {
		opts.MaxSegments = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &WAL{fs: fsys, dir: dir, opts: opts, log: opts.Logger.With("component", "wal"),
		groups: map[uint64]*GroupStorage{}, retiring: map[*GroupStorage]bool{}, stopped: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	w.maxBatch = maxBatch
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := w.recover(); err != nil {
		if w.active != nil {
			_ = w.active.Close()
		}
		return nil, err
	}
	w.nsegs.Store(int64(len(w.segs)))
	go w.run()
	return w, nil
}

// Groups returns the ids of the groups with state in the log, ascending:
// those recovered and those saved since.
func (w *WAL) Groups() []uint64 {
	w.mu.Lock()
	gs := make([]*GroupStorage, 0, len(w.groups))
	for _, g := range w.groups {
		gs = append(gs, g)
	}
	w.mu.Unlock()
	var ids []uint64
	for _, g := range gs {
		g.mu.Lock()
		if g.recorded && !g.removed {
			ids = append(ids, g.id)
		}
		g.mu.Unlock()
	}
	slices.Sort(ids)
	return ids
}

// Group returns group id's storage, creating an empty one if the log
// holds none.
func (w *WAL) Group(id uint64) *GroupStorage {
	w.mu.Lock()
	defer w.mu.Unlock()
	g, ok := w.groups[id]
	if !ok {
		g = &GroupStorage{w: w, id: id}
		w.groups[id] = g
	}
	return g
}

// forget drops a removed group from the map (unless a new one took its
// id); it keeps pinning its segments until its remove record is written.
func (w *WAL) forget(g *GroupStorage) {
	w.mu.Lock()
	if w.groups[g.id] == g {
		delete(w.groups, g.id)
	}
	w.retiring[g] = true
	w.mu.Unlock()
}

// enqueue hands p to the writer; it reports false, leaving p.done
// uncalled, once the writer has stopped (after Close). Called with p.g.mu
// held (when p has a group), so a group's records queue in the order of
// its state changes; the caller calls p.done(ErrClosed) after unlocking.
func (w *WAL) enqueue(p pending) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.exited {
		return false
	}
	w.queue = append(w.queue, p)
	if len(w.queue) == 1 {
		w.cond.Signal()
	}
	return true
}

// Err returns the error that stopped the log, if any: after a failed
// write or fsync nothing more is written and every save fails with it; a
// restart (Open) recovers what was durable.
func (w *WAL) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats returns the counters.
func (w *WAL) Stats() Stats {
	return Stats{
		Fsyncs: w.fsyncs.Load(), Entries: w.entries.Load(), Records: w.records.Load(),
		Bytes: w.bytes.Load(), SyncTime: time.Duration(w.syncNanos.Load()),
		Segments: int(w.nsegs.Load()), Deleted: w.deleted.Load(), Rewritten: w.checkpoints.Load(),
	}
}

// Close writes what is queued, stops the writer and closes the files.
// Saves after Close fail with ErrClosed.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		<-w.stopped
		return nil
	}
	w.closing = true
	w.cond.Signal()
	w.mu.Unlock()
	<-w.stopped
	if w.active != nil {
		return w.active.Close()
	}
	return nil
}
