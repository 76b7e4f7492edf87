package wal

import (
	"fmt"
	"runtime"
	"time"
)

// run is the writer goroutine: it takes everything queued, writes it as
// one batch with one fsync, then completes the batch in queue order.
// While it syncs, the next batch gathers — the group commit across groups.
func (w *WAL) run() {
	defer close(w.stopped)
	var spare []pending
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closing {
			w.cond.Wait()
		}
		if len(w.queue) == 0 { // closing, and nothing left
			w.exited = true
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue = spare[:0]
		w.mu.Unlock()
		if rest := w.commit(batch); len(rest) > 0 {
			// Over maxBatch: the rest goes first in the next batch.
			w.mu.Lock()
			w.queue = append(append(make([]pending, 0, len(rest)+len(w.queue)), rest...), w.queue...)
			w.mu.Unlock()
		}
		clear(batch)
		spare = batch
		// Let the goroutines the completions woke make their next saves
		// before the next batch is taken: otherwise groups that wait for
		// each save split into two alternating half-size batches
		// (BenchmarkSave: 49 entries per fsync without this, 63 with).
		runtime.Gosched()
	}
}

// fail makes err the log's sticky error.
func (w *WAL) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.log.Error("write-ahead log failed; every save fails until the node restarts", "err", err)
	}
	return w.err
}

func finish(batch []pending, err error) {
	for _, p := range batch {
		if p.done != nil {
			p.done(err)
		}
	}
}

// maxBatch bounds the bytes one batch writes (its header holds a uint32
// length); a single larger record still goes alone.
const maxBatch = 64 << 20

// commit writes and fsyncs one batch, then completes it. What did not fit
// in maxBatch it returns, unwritten, for the next batch.
func (w *WAL) commit(batch []pending) (rest []pending) {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		finish(batch, err)
		return nil
	}
	structural := false // the batch may free a segment
	if w.activeSize >= w.opts.SegmentSize {
		if err := w.rollover(); err != nil {
			finish(batch, w.fail(fmt.Errorf("wal: starting a new segment: %w", err)))
			return nil
		}
		structural = true
	}
	recs := w.recs[:0]
	size, entries, records := batchHeaderLen, 0, 0
	for i, p := range batch {
		if p.rec == nil {
			continue
		}
		n := len(p.rec) - recordRoom
		for _, part := range p.parts {
			n += len(part)
		}
		if records > 0 && size+n > w.maxBatch {
			batch, rest = batch[:i], append([]pending(nil), batch[i:]...)
			break
		}
		recs = append(recs, &batch[i])
		size += n
		records++
		entries += int(p.meta.n)
		if p.meta.typ != recSave || p.meta.hasSnap {
			structural = true
		}
	}
	if records > 0 {
		path := w.segPath(w.segs[len(w.segs)-1])
		if err := w.writeBatch(recs, size); err != nil {
			finish(batch, w.fail(fmt.Errorf("wal: write %s: %w", path, err)))
			return rest
		}
		start := time.Now()
		err := w.active.Sync()
		took := time.Since(start)
		if err != nil {
			finish(batch, w.fail(fmt.Errorf("wal: fsync %s: %w", path, err)))
			return rest
		}
		w.activeSize += int64(size)
		w.fsyncs.Add(1)
		w.entries.Add(uint64(entries))
		w.records.Add(uint64(records))
		w.bytes.Add(uint64(size))
		w.syncNanos.Add(uint64(took))
		if w.opts.OnSync != nil {
			w.opts.OnSync(entries, took)
		}
		seg := w.segs[len(w.segs)-1]
		for _, p := range batch {
			if p.rec != nil && p.g != nil {
				p.g.mu.Lock()
				p.g.pins.note(p.meta, seg)
				p.g.mu.Unlock()
				if p.meta.typ == recRemove {
					w.mu.Lock()
					delete(w.retiring, p.g)
					w.mu.Unlock()
				}
			}
		}
	}
	clear(recs)
	w.recs = recs[:0]
	for i := range batch {
		putRecBuf(batch[i].rec) // written
		batch[i].rec, batch[i].parts = nil, nil
	}
	finish(batch, nil)
	if structural && len(w.segs) > 1 {
		w.deleteUnpinned()
	}
	return rest
}

// bigRecord is the size from which a record of a batch of several is
// written from its own buffer (one more write call) rather than copied
// into the batch buffer: a write costs less than copying that much.
const bigRecord = 32 << 10

// writeBatch writes one batch: a batch header for size bytes (header
// included), then recs (each with recordRoom bytes in front, encodeQueued,
// and maybe parts after it, encodeSnapshotParts and encodeSaveParts).
// The header goes into the first record's room, so a batch of one record
// — one group's save, or a snapshot — is one write from that record's
// buffer; in a batch of several, small records are gathered into w.buf
// and large ones written from their own buffers, in order. The writes of
// one batch are followed by one fsync and nothing is acknowledged before
// it, so several writes are as good as one: a crash in between tears the
// batch, as a crash inside one write can.
func (w *WAL) writeBatch(recs []*pending, size int) error {
	first := recs[0].rec
	putBatchHeader(first[:batchHeaderLen], size-batchHeaderLen)
	if len(recs) == 1 && len(recs[0].parts) == 0 {
		_, err := w.active.Write(first)
		return err
	}
	if v, ok := w.active.(rawFile); ok {
		// The operating system's file: every part in one writev, none
		// copied (writev.go).
		iov := w.iov[:0]
		for i, p := range recs {
			rec := p.rec
			if i > 0 {
				rec = rec[recordRoom:]
			}
			iov = append(append(iov, rec), p.parts...)
		}
		err := writev(v, iov)
		clear(iov)
		w.iov = iov[:0]
		return err
	}
	buf := w.buf[:0]
	for i, p := range recs {
		rec := p.rec
		if i > 0 {
			rec = rec[recordRoom:]
		}
		for j := -1; j < len(p.parts); j++ {
			part := rec
			if j >= 0 {
				part = p.parts[j]
			}
			if len(part) < bigRecord {
				buf = append(buf, part...)
				continue
			}
			if len(buf) > 0 {
				if _, err := w.active.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
			if _, err := w.active.Write(part); err != nil {
				return err
			}
		}
	}
	if len(buf) > 0 {
		if _, err := w.active.Write(buf); err != nil {
			return err
		}
	}
	if cap(buf) <= 4<<20 {
		w.buf = buf[:0] // a huge batch's buffer is not kept
	} else {
		w.buf = nil
	}
	return nil
}

// rollover seals the active segment (fsynced with its last batch) and
// starts the next. When the log is over MaxSegments, the groups that pin
// the oldest segment are rewritten forward.
func (w *WAL) rollover() error {
	id := w.segs[len(w.segs)-1] + 1
	f, err := w.fs.Create(w.segPath(id))
	if err != nil {
		return err
	}
	// The new file must be durable before anything acknowledged lives in it.
	if err := w.fs.SyncDir(w.dir); err != nil {
		_ = f.Close()
		return err
	}
	_ = w.active.Close()
	w.active, w.activeSize = f, 0
	w.segs = append(w.segs, id)
	w.nsegs.Store(int64(len(w.segs)))
	if len(w.segs) > w.opts.MaxSegments {
		w.rewriteOldest()
	}
	return nil
}

func (w *WAL) groupList() []*GroupStorage {
	w.mu.Lock()
	defer w.mu.Unlock()
	gs := make([]*GroupStorage, 0, len(w.groups)+len(w.retiring))
	for _, g := range w.groups {
		gs = append(gs, g)
	}
	for g := range w.retiring {
		gs = append(gs, g)
	}
	return gs
}

// rewriteOldest queues a checkpoint of every group that pins the oldest
// segment. The checkpoint is queued under the group's lock, so it sits
// after every record whose effect it holds and before every later one.
// A group whose live state is large (over a quarter of a segment, and
// over 64 KiB) is
// left to free the segment by compacting: rewriting it at every rollover
// would write it again and again while it does not compact.
func (w *WAL) rewriteOldest() {
	oldest := w.segs[0]
	for _, g := range w.groupList() {
		g.mu.Lock()
		if g.pins.oldest() == oldest {
			w.rewrite(g)
		}
		g.mu.Unlock()
	}
}

// rewrite queues g's checkpoint. Called with g.mu held.
func (w *WAL) rewrite(g *GroupStorage) {
	r := g.checkpoint()
	if r == nil {
		return
	}
	if size := r.sizeEstimate(); size > max(w.opts.SegmentSize/4, 64<<10) {
		w.log.Debug("not rewriting a large group forward; it frees the segment when it compacts",
			"group", g.id, "bytes", size)
		return
	}
	buf, err := encodeQueued(nil, r)
	if err != nil {
		w.log.Warn("cannot rewrite a group forward", "group", g.id, "err", err)
		return
	}
	if w.enqueue(pending{g: g, rec: buf, meta: metaOf(r)}) {
		w.checkpoints.Add(1)
	}
}

// deleteUnpinned deletes the sealed segments older than every group's
// oldest pin, oldest first, each removal made durable before the next so
// the surviving segments always run without a gap.
func (w *WAL) deleteUnpinned() {
	limit := w.segs[len(w.segs)-1] // never the active segment
	for _, g := range w.groupList() {
		g.mu.Lock()
		o := g.pins.oldest()
		g.mu.Unlock()
		if o != 0 && o < limit {
			limit = o
		}
	}
	for len(w.segs) > 1 && w.segs[0] < limit {
		path := w.segPath(w.segs[0])
		if err := w.fs.Remove(path); err != nil {
			w.log.Warn("cannot delete an unneeded segment", "segment", path, "err", err)
			return
		}
		if err := w.fs.SyncDir(w.dir); err != nil {
			w.log.Warn("cannot sync the log directory after deleting a segment", "segment", path, "err", err)
			return
		}
		w.segs = w.segs[1:]
		w.deleted.Add(1)
		w.nsegs.Store(int64(len(w.segs)))
	}
}
