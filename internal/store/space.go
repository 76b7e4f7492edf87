package store

import (
	"fmt"
	"math"
	"time"

	"github.com/tern-broker/tern/internal/vfs"
)

// Free space: the store keeps an estimate (the last measurement minus the
// bytes written since) so that the write path can refuse messages below
// Options.Reserve without a system call per message, and measures again
// every spaceCheckBytes written, telling Options.OnFreeSpace, so a disk
// alarm follows the writes instead of a once-a-second poll that a fast
// publisher outruns.

// spaceCheckBytes is how much is written between two measurements of the
// free space on the write path: one statfs per MiB costs nothing next to
// writing the MiB.
const spaceCheckBytes = 1 << 20

// noteWrite accounts a write of n bytes, or a failed write, and logs when
// writes start failing and when they work again — once each per episode, not
// once per refused message. On a nearly full disk small writes may fit
// between failed large ones, so "working again" means no failure for
// WriteRecovery after a good write: a timer started by the first good write
// after a failure decides it, so the end of an episode is logged even when
// nothing is written after it, and the next episode is logged again.
// Called with a log's lock held.
func (s *Store) noteWrite(n int, err error) {
	if err != nil {
		s.needCheck.Store(true)
		s.okSince.Store(0)
		s.failedWrites.Add(1)
		if s.writeFailing.CompareAndSwap(false, true) {
			s.log.Error("writes to the data directory are failing; publishes are refused (nacked) until they succeed again", "err", err)
		}
		return
	}
	s.free.Add(-int64(n))
	if s.sinceCheck.Add(int64(n)) >= spaceCheckBytes {
		s.needCheck.Store(true)
	}
	if s.writeFailing.Load() {
		now := time.Now().UnixNano()
		if s.okSince.CompareAndSwap(0, now) {
			time.AfterFunc(s.opts.WriteRecovery, func() { s.endFailingEpisode(now) })
		}
	}
}

// endFailingEpisode ends the episode of failing writes that the good write
// at since began to end, unless a write failed after it (okSince is then
// 0, or a later good write's time with a timer of its own).
func (s *Store) endFailingEpisode(since int64) {
	if s.okSince.Load() == since && s.writeFailing.CompareAndSwap(true, false) {
		s.okSince.Store(0)
		s.log.Info("writes to the data directory succeed again", "failed_writes", s.failedWrites.Swap(0))
	}
}

// roomForMessage refuses a message append once the estimated free space is
// below the reserve, which stays for acks, indexes and definitions.
func (s *Store) roomForMessage() error {
	r := s.opts.Reserve
	if r <= 0 || s.free.Load() >= r {
		return nil
	}
	s.needCheck.Store(true)
	if s.belowReserve.CompareAndSwap(false, true) {
		s.log.Warn("free space below the reserve; refusing new messages, acks still written", "reserve", r, "free", s.free.Load())
	}
	return fmt.Errorf("store: free space below the reserve of %d bytes: %w", r, vfs.ErrNoSpace)
}

// measure reads the free space, updates the estimate and tells
// OnFreeSpace.
func (s *Store) measure() (uint64, error) {
	s.needCheck.Store(false)
	s.sinceCheck.Store(0)
	free, err := s.fs.FreeSpace(s.dir)
	if err != nil {
		return 0, err
	}
	s.setFree(free)
	if r := s.opts.Reserve; r > 0 && int64(free) >= r && s.belowReserve.CompareAndSwap(true, false) {
		s.log.Info("free space above the reserve again; accepting messages", "reserve", r, "free", free)
	}
	if f := s.opts.OnFreeSpace; f != nil {
		f(free)
	}
	return free, nil
}

// afterBatch measures the free space when the batch wrote enough since the
// last measurement, or a write failed. On the commit goroutine, no locks.
func (s *Store) afterBatch() {
	if s.needCheck.Load() {
		_, _ = s.measure()
	}
}

// setFree replaces the free-space estimate with a measurement.
func (s *Store) setFree(free uint64) { s.free.Store(int64(min(free, math.MaxInt64))) }
