package store

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// SyncMode says when written data is fsynced.
type SyncMode string

const (
	// SyncAlways confirms a message only after an fsync covering it (group
	// commit). The default.
	SyncAlways SyncMode = "always"
	// SyncInterval confirms once the data is written to the OS and fsyncs
	// every SyncInterval: a kill -9 loses nothing, a power loss may lose up
	// to the interval.
	SyncInterval SyncMode = "interval"
)

// Options configure a Store. Zero values take the defaults noted.
type Options struct {
	Sync         SyncMode      // default SyncAlways
	SyncInterval time.Duration // for SyncInterval; default 200ms
	SegmentSize  int64         // roll segments past this size; default 64 MiB
	// Reserve is free space kept for acks, segment indexes and
	// definitions: below it, appends of messages are refused (their
	// publishers get a nack) while acks and deletes are still written, so
	// a consumer can always drain a full disk. 0: no reserve.
	Reserve int64
	// OnFreeSpace, if set, is told the free space each time the store
	// measures it: after every MiB written, after a failed write, and on
	// FreeSpace. It runs without the store's locks.
	OnFreeSpace func(free uint64)
	// WriteRecovery is how long writes must work, without a failure,
	// before the store logs that they work again. Default 1s.
	WriteRecovery time.Duration
	Logger        *slog.Logger
	// SnapshotEvery is how many definition commands are logged before
	// the broker is asked for a snapshot; default 20,000.
	SnapshotEvery int
}

// Store is the node's durable storage under one directory.
type Store struct {
	fs   vfs.FS
	dir  string
	opts Options
	log  *slog.Logger
	com  *committer
	defs *defsLog // the definitions' snapshot and command log

	mu   sync.Mutex
	logs map[string]*QueueLog

	stats counters

	free         atomic.Int64 // estimated free bytes: last measurement minus writes since
	sinceCheck   atomic.Int64 // bytes written since the last measurement
	needCheck    atomic.Bool  // measure after the current batch
	writeFailing atomic.Bool  // writes are failing (logged once per change)
	okSince      atomic.Int64 // UnixNano of the first good write since the last failure, 0: none
	failedWrites atomic.Uint64
	belowReserve atomic.Bool // messages are refused (logged once per change)
}

type counters struct {
	batches, fsyncs, fsyncNanos, committed, segmentsDeleted atomic.Uint64
}

// Stats are the store's counters.
type Stats struct {
	// Batches is the number of group commits that fsynced something;
	// Fsyncs the fsync calls they made (one per queue written in the batch).
	Batches, Fsyncs uint64
	// Committed counts messages confirmed durable.
	Committed uint64
	// FsyncTime is the total time spent waiting for fsync batches.
	FsyncTime       time.Duration
	SegmentsDeleted uint64
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Batches:         s.stats.batches.Load(),
		Fsyncs:          s.stats.fsyncs.Load(),
		Committed:       s.stats.committed.Load(),
		FsyncTime:       time.Duration(s.stats.fsyncNanos.Load()),
		SegmentsDeleted: s.stats.segmentsDeleted.Load(),
	}
}

// Open opens (creating if needed) the store in dir.
func Open(fsys vfs.FS, dir string, opts Options) (*Store, error) {
	if opts.Sync == "" {
		opts.Sync = SyncAlways
	}
	if opts.Sync != SyncAlways && opts.Sync != SyncInterval {
		return nil, fmt.Errorf("store: unknown sync mode %q", opts.Sync)
	}
	if opts.WriteRecovery <= 0 {
		opts.WriteRecovery = time.Second
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 200 * time.Millisecond
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	opts.SegmentSize = min(opts.SegmentSize, 1<<30) // offsets are 32-bit
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = defaultSnapshotRecords
	}
	if err := fsys.MkdirAll(filepath.Join(dir, "queues")); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{fs: fsys, dir: dir, opts: opts, log: opts.Logger, logs: map[string]*QueueLog{}}
	s.free.Store(math.MaxInt64)
	if free, err := fsys.FreeSpace(dir); err == nil {
		s.setFree(free)
	}
	var err error
	if s.defs, err = openDefs(fsys, dir, opts.SnapshotEvery); err != nil {
		return nil, err
	}
	s.com = newCommitter(s)
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// FreeSpace measures the free bytes on the data directory's file system
// (and tells Options.OnFreeSpace).
func (s *Store) FreeSpace() (uint64, error) { return s.measure() }

func (s *Store) queueDir(id string) string { return filepath.Join(s.dir, "queues", id) }

// QueueLog opens the log of queue id, recovering what a previous run left.
// The result satisfies broker.Log.
func (s *Store) QueueLog(id string) (*QueueLog, error) {
	if id == "" || filepath.Base(id) != id {
		return nil, fmt.Errorf("store: invalid queue id %q", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logs[id]; ok {
		return nil, fmt.Errorf("store: queue log %s is already open", id)
	}
	l, err := s.openLog(id, s.opts.SegmentSize)
	if err != nil {
		return nil, err
	}
	s.logs[id] = l
	return l, nil
}

// QueueLogExists says whether queue id's log has anything on disk or is
// open: false for a queue that never held a message (its directory is made
// with its first segment), whose log the broker then opens only when a
// message comes.
func (s *Store) QueueLogExists(id string) bool {
	s.mu.Lock()
	_, open := s.logs[id]
	s.mu.Unlock()
	if open {
		return true
	}
	_, err := s.fs.List(s.queueDir(id))
	return !errors.Is(err, vfs.ErrNotExist)
}

// StreamLog opens the log of a stream, whose messages stay after
// acknowledgement until retention drops whole segments. The result
// satisfies broker.StreamLog.
func (s *Store) StreamLog(id string, segmentSize int64) (*QueueLog, error) {
	if id == "" || filepath.Base(id) != id {
		return nil, fmt.Errorf("store: invalid stream id %q", id)
	}
	if segmentSize <= 0 {
		segmentSize = s.opts.SegmentSize
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.logs[id]; ok {
		return nil, fmt.Errorf("store: log %s is already open", id)
	}
	l, err := s.openLog(id, min(segmentSize, 1<<30))
	if err != nil {
		return nil, err
	}
	l.stream = true
	if err := s.fs.MkdirAll(l.dir); err != nil { // for the offsets file
		return nil, fmt.Errorf("store: %w", err)
	}
	l.noDir = false
	if err := l.loadOffsets(); err != nil {
		return nil, err
	}
	s.logs[id] = l
	return l, nil
}

// DeleteQueueLog removes a deleted queue's log.
func (s *Store) DeleteQueueLog(id string) error {
	s.mu.Lock()
	l := s.logs[id]
	delete(s.logs, id)
	s.mu.Unlock()
	if l != nil {
		l.mu.Lock()
		for _, seg := range l.segs {
			_ = seg.file.Close()
		}
		l.closed = true
		noDir := l.noDir
		l.mu.Unlock()
		if noDir {
			// Opened without a directory and never given one (no
			// message reached it): nothing on disk to remove or sync.
			return nil
		}
	}
	dir := s.queueDir(id)
	names, err := s.fs.List(dir)
	if err != nil {
		if errors.Is(err, vfs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, n := range names {
		_ = s.fs.Remove(filepath.Join(dir, n))
	}
	_ = s.fs.Remove(dir)
	return s.fs.SyncDir(filepath.Join(s.dir, "queues"))
}

// Close flushes and syncs every log and stops the committer.
func (s *Store) Close() error {
	s.com.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := []error{s.defs.close()}
	for id, l := range s.logs {
		errs = append(errs, l.Close())
		delete(s.logs, id)
	}
	return errors.Join(errs...)
}
