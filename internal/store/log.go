package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/record"
	"github.com/tern-broker/tern/internal/vfs"
)

// QueueLog is the segmented log of one durable queue; it implements
// broker.Log.
type QueueLog struct {
	st  *Store
	id  string
	dir string

	mu         sync.Mutex
	segs       []*segment   // oldest first; the last one is active
	buf        []byte       // message records not yet written to the OS
	bufComps   []completion // completions of the records in buf
	written    []completion // completions of records written, not yet taken by a commit
	spareComps []completion // a delivered batch's slice, reused for written
	settled    []completion // completions a failure decided, for the committer to deliver
	acks       []uint64     // ack seqs to write with the next flush
	dels       []uint64     // delivered seqs to write with the next flush
	failed     error        // sticky: the log can no longer be written
	badEnd     error        // the active segment's file is not yet cut back to its good end
	// refused are the sequence numbers whose records a failure cut away:
	// their publishers were told, and Read says so (message.ErrNotStored)
	// rather than "not in the log". One range per failure, kept for the
	// log's life: a few words each, however many messages.
	refused []seqRange
	// onRefused, if set, is told each range as it is cut away (with mu
	// held: it must not call back into the log).
	onRefused func(first, last uint64)
	// cutsSince are the cuts made since the committer last took a commit
	// (commitFile): a cut can remove records of the commit whose fsync is
	// in flight (an appender's seal fsync failed meanwhile), and those must
	// not be confirmed when that fsync then succeeds.
	cutsSince    []cutMark
	closed       bool
	stream       bool              // a stream's log: messages stay after consumption
	dirDirty     bool              // segments were created or removed since the last directory sync
	noDir        bool              // the directory is made with the first segment (see openLog)
	segSize      int64             // roll segments past this size
	appended     uint64            // one past the highest seq appended
	durable      uint64            // one past the highest seq known durable (streams read up to here)
	onDurable    func()            // called (without locks) when durable advances
	offsets      map[string]uint64 // streams: consumer name → last acknowledged offset
	offsetsDirty bool
	recovered    []message.StoredMessage
}

var errClosed = errors.New("store: log closed")

// Append implements broker.Log.
func (l *QueueLog) Append(seq uint64, m *message.Message, done message.Completion, token uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appendLocked(seq, "", false, m, done, token)
}

// AppendNext implements broker.StreamLog: it appends m at the log's next
// offset, one past the last record kept, and returns that offset. Choosing
// the offset under the log's lock is what keeps a stream's offsets dense:
// a write cut away by a failure (cutLocked) hands its offsets to the next
// appends, so readers see no gap where publishes were refused.
func (l *QueueLog) AppendNext(m *message.Message, done message.Completion, token uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seq := l.appended
	return seq, l.appendLocked(seq, "", false, m, done, token)
}

// appendLocked appends a message record, or with keyed a keyed record
// (a RecordLog's, see records.go).
func (l *QueueLog) appendLocked(seq uint64, key string, keyed bool, m *message.Message, done message.Completion, token uint64) error {
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	if err := l.restoreEndLocked(); err != nil {
		return err
	}
	if err := l.st.roomForMessage(); err != nil {
		return err
	}
	seg, err := l.activeFor(seq)
	if err != nil {
		return err
	}
	typ := recMessage
	if keyed {
		typ = recKeyed
	}
	var start int
	l.buf, start = record.Begin(l.buf, typ)
	l.buf = binary.LittleEndian.AppendUint64(l.buf, seq)
	if keyed {
		l.buf = binary.LittleEndian.AppendUint32(l.buf, uint32(len(key)))
		l.buf = append(l.buf, key...)
	}
	l.buf = message.AppendMessage(l.buf, m)
	sealRecord(l.buf, start)
	n := len(l.buf) - start

	ttl := int64(-1)
	if m.Props.Expiration != "" {
		if v, err := strconv.ParseInt(m.Props.Expiration, 10, 64); err == nil {
			ttl = v
		}
	}
	seg.add(msgMeta{seq: seq, off: uint32(seg.end), ln: uint32(n), published: m.Published, ttlMs: ttl,
		prio: m.Props.Priority, size: uint32(len(m.Body)), filter: m.StreamFilterHash()}, true)
	seg.end += int64(n)
	l.appended = max(l.appended, seq+1)
	if done != nil {
		l.bufComps = append(l.bufComps, completion{c: done, token: token})
	}
	l.st.com.add(l, true)
	return nil
}

// activeFor returns the segment to append seq to, rolling to a new one when
// the active segment is full.
func (l *QueueLog) activeFor(seq uint64) (*segment, error) {
	if n := len(l.segs); n > 0 {
		s := l.segs[n-1]
		if !s.sealed && s.end < l.segSize && seq >= s.base && (len(s.idx) == 0 || seq > s.maxSeq) {
			return s, nil
		}
		// Sealed already when creating its successor failed (a full
		// disk): sealing again would rewrite its index without messages.
		if !s.sealed {
			if err := l.sealActive(); err != nil {
				return nil, err
			}
		}
	}
	if l.noDir {
		if err := l.st.fs.MkdirAll(l.dir); err != nil {
			return nil, fmt.Errorf("store: creating segment: %w", err)
		}
		l.noDir = false
	}
	f, err := l.st.fs.Create(segmentName(l.dir, seq))
	if err != nil {
		return nil, fmt.Errorf("store: creating segment: %w", err)
	}
	s := &segment{base: seq, path: segmentName(l.dir, seq), file: f}
	l.segs = append(l.segs, s)
	l.dirDirty = true
	return s, nil
}

// sealActive makes the active segment durable and writes its sidecar index.
// It runs rarely (once per SegmentSize bytes), on the appending goroutine.
func (l *QueueLog) sealActive() error {
	s := l.segs[len(l.segs)-1]
	if err := l.flushLocked(); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		err = fmt.Errorf("store: fsync: %w", err)
		l.cutLocked(s, s.synced, err)
		return err
	}
	l.syncedLocked(s, s.flushed, len(s.acks), len(s.dels))
	if err := vfs.WriteFileAtomic(l.st.fs, s.idxPath(), s.encodeIndex()); err != nil {
		return fmt.Errorf("store: writing segment index: %w", err)
	}
	s.sealed = true
	s.meta, s.acks, s.dels = nil, nil, nil
	return nil
}

// flushLocked writes buffered records to the active segment's file. On a
// failed write the file is cut back to its last good size, the buffered
// messages are forgotten (their publishers get a nack) and the acks are
// kept for the next try.
func (l *QueueLog) flushLocked() error {
	if len(l.segs) == 0 {
		l.acks, l.dels = l.acks[:0], l.dels[:0]
		return nil
	}
	if err := l.restoreEndLocked(); err != nil {
		return err
	}
	s := l.segs[len(l.segs)-1]
	if s.sealed {
		// Its successor could not be created yet; buf is empty (the
		// append failed) and acks wait for the new segment.
		return nil
	}
	if len(l.acks) > 0 {
		l.buf = appendSeqRecord(l.buf, recAck, l.acks)
	}
	if len(l.dels) > 0 {
		l.buf = appendSeqRecord(l.buf, recDelivered, l.dels)
	}
	if len(l.buf) == 0 {
		return nil
	}
	_, err := s.file.Write(l.buf)
	if err != nil {
		werr := fmt.Errorf("store: write: %w", err)
		l.cutLocked(s, s.flushed, werr)
		l.st.noteWrite(0, werr)
		return werr
	}
	// The sidecar index of this segment must list the acks and deliveries
	// recorded in it.
	s.acks = append(s.acks, l.acks...)
	s.dels = append(s.dels, l.dels...)
	s.flushed += int64(len(l.buf))
	s.end = s.flushed
	l.st.noteWrite(len(l.buf), nil)
	l.written = append(l.written, l.bufComps...)
	clear(l.bufComps)
	l.buf, l.bufComps, l.acks, l.dels = l.buf[:0], l.bufComps[:0], l.acks[:0], l.dels[:0]
	return nil
}

// cutLocked makes cut the end of the active segment s after a failed write
// (cut: the end of the last good write) or fsync (cut: the end of the last
// good fsync; the kernel may have dropped the pages after it). Messages
// past cut are forgotten and their publishers told err, as are the
// buffered ones; ack and delivered records past cut are queued again, so
// the log appends from a known good end and never confirms what it lost.
func (l *QueueLog) cutLocked(s *segment, cut int64, err error) {
	if cut < s.flushed {
		for _, c := range l.written {
			c.err = err
			l.settled = append(l.settled, c)
		}
		clear(l.written)
		l.written = l.written[:0]
		l.acks = append(l.acks, s.acks[s.syncedAcks:]...)
		l.dels = append(l.dels, s.dels[s.syncedDels:]...)
		s.acks, s.dels = s.acks[:s.syncedAcks], s.dels[:s.syncedDels]
	}
	for _, c := range l.bufComps {
		c.err = err
		l.settled = append(l.settled, c)
	}
	clear(l.bufComps)
	l.buf, l.bufComps = l.buf[:0], l.bufComps[:0]
	if first, last, ok := s.dropFrom(cut); ok {
		if l.stream {
			// A stream's offsets are dense: the next append takes the
			// first offset cut away (AppendNext). Nothing read it — the
			// cut is past the durable end — and the fsynced truncate in
			// restoreEndLocked, which comes before any new append, keeps
			// the old records from coming back after a crash.
			l.appended = first
		} else {
			l.refused = append(l.refused, seqRange{first, last})
		}
		l.cutsSince = append(l.cutsSince, cutMark{seg: s, off: cut, err: err})
		if l.onRefused != nil {
			l.onRefused(first, last)
		}
		// No ack or delivered record may name a forgotten message: after
		// a restart its seq may be given to a new one.
		l.acks = slices.DeleteFunc(l.acks, func(q uint64) bool { return q >= first })
		l.dels = slices.DeleteFunc(l.dels, func(q uint64) bool { return q >= first })
	}
	s.flushed, s.end = cut, cut
	l.badEnd = err
	_ = l.restoreEndLocked()
}

// restoreEndLocked cuts the active segment's file back to its good end
// after a failure, and fsyncs the cut; until that works nothing is
// appended. Retried on every append and flush.
func (l *QueueLog) restoreEndLocked() error {
	if l.badEnd == nil {
		return nil
	}
	s := l.segs[len(l.segs)-1]
	if err := s.file.Truncate(s.flushed); err != nil {
		return fmt.Errorf("store: cutting the log back to its last good end after %v: %w", l.badEnd, err)
	}
	// The fsync makes the cut durable and tells whether the disk works
	// again; everything up to the cut is then known durable.
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("store: fsync of the log cut back after %v: %w", l.badEnd, err)
	}
	s.synced, s.syncedAcks, s.syncedDels = s.flushed, len(s.acks), len(s.dels)
	l.badEnd = nil
	return nil
}

// syncedLocked records that an fsync covered s up to off, with acks and
// dels of its ack and delivered lists.
func (l *QueueLog) syncedLocked(s *segment, off int64, acks, dels int) {
	if off > s.synced && off <= s.flushed {
		s.synced = off
		s.syncedAcks = max(s.syncedAcks, min(acks, len(s.acks)))
		s.syncedDels = max(s.syncedDels, min(dels, len(s.dels)))
	}
}

func appendSeqRecord(buf []byte, typ byte, list []uint64) []byte {
	buf, start := record.Begin(buf, typ)
	for _, q := range list {
		buf = binary.LittleEndian.AppendUint64(buf, q)
	}
	sealRecord(buf, start)
	return buf
}

// segmentOf returns the segment that would hold seq, or nil.
func (l *QueueLog) segmentOf(seq uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > seq }) - 1
	if i < 0 {
		return nil
	}
	return l.segs[i]
}

// Ack implements broker.Log.
func (l *QueueLog) Ack(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	s := l.segmentOf(seq)
	if s == nil || !s.ack(seq) {
		return // a transient message, or already consumed
	}
	l.acks = append(l.acks, seq)
	l.st.com.add(l, false)
	l.dropConsumedLocked()
}

// Delivered implements broker.Log.
func (l *QueueLog) Delivered(seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if s := l.segmentOf(seq); s != nil && s.has(seq) {
		l.dels = append(l.dels, seq)
		l.st.com.add(l, false)
	}
}

// dropConsumedLocked deletes sealed segments from the head while every
// message in them is consumed. Oldest first only, so the ack records that
// cancel a segment's messages (always in it or a later one) outlive them.
// A log whose every message is consumed starts over (see resetLocked).
func (l *QueueLog) dropConsumedLocked() {
	for len(l.segs) > 1 && l.segs[0].sealed && l.segs[0].live == 0 {
		s := l.segs[0]
		_ = s.file.Close()
		_ = l.st.fs.Remove(s.path)
		_ = l.st.fs.Remove(s.idxPath())
		l.segs = l.segs[1:]
		l.dirDirty = true
		l.st.stats.segmentsDeleted.Add(1)
	}
	if n := len(l.segs); n == 1 && l.segs[0].live == 0 && len(l.buf) == 0 &&
		(l.segs[0].end >= resetBytes || l.st.writeFailing.Load()) {
		l.resetLocked()
	}
}

// resetBytes is the size from which a drained log starts over in a new
// segment instead of appending to the old one.
const resetBytes = 1 << 20

// resetLocked starts a log whose every message is consumed over in an
// empty segment and deletes the old one, acks pending or not: the space
// comes back and no ack record is needed any more. This is what lets a
// consumer drain a full disk: its acks cannot be written, but the drained
// queue frees its segment. The new segment is named past every seq used,
// and created before the old one is removed, so a crash in between only
// brings back consumed messages (redelivered), never reuses a seq.
func (l *QueueLog) resetLocked() {
	old := l.segs[0]
	if l.stream || len(old.idx) == 0 {
		return // no messages: only ack records, and no more than resetBytes
	}
	next := l.nextSeqLocked()
	f, err := l.st.fs.Create(segmentName(l.dir, next))
	if err != nil {
		return // tried again at the next ack
	}
	_ = old.file.Close()
	_ = l.st.fs.Remove(old.path)
	_ = l.st.fs.Remove(old.idxPath())
	l.segs = []*segment{{base: next, path: segmentName(l.dir, next), file: f}}
	l.acks, l.dels, l.badEnd = l.acks[:0], l.dels[:0], nil
	l.dirDirty = true
	l.st.stats.segmentsDeleted.Add(1)
}

// Read implements broker.Log.
func (l *QueueLog) Read(seq uint64) (*message.Message, error) {
	_, m, err := l.readRecord(seq)
	return m, err
}

// readRecord reads the message record seq; key is a keyed record's key.
// The file is read without the log's lock, so appends and acks to the log
// (and so publishers to its queue) go on while a body comes from disk.
// Flushed records are only ever cut away (after a failed write or fsync),
// never rewritten in place, and the record's check catches a read that
// raced a cut; a segment dropped meanwhile (its messages all consumed, or
// the log closed) fails the read. Callers treat a failed read as a message
// gone.
func (l *QueueLog) readRecord(seq uint64) (key string, m *message.Message, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", nil, errClosed
	}
	s := l.segmentOf(seq)
	if s == nil || !s.has(seq) {
		refused := l.wasRefusedLocked(seq)
		l.mu.Unlock()
		if refused {
			return "", nil, fmt.Errorf("store: message %d: %w", seq, message.ErrNotStored)
		}
		return "", nil, fmt.Errorf("store: message %d is not in the log", seq)
	}
	e := s.idx[s.find(seq)]
	off, ln := int64(e.off), int64(e.ln)
	if off+ln > s.flushed {
		if err := l.flushLocked(); err != nil {
			l.mu.Unlock()
			return "", nil, err
		}
	}
	file := s.file
	l.mu.Unlock()
	buf := make([]byte, ln)
	if _, err := file.ReadAt(buf, off); err != nil {
		return "", nil, fmt.Errorf("store: reading message %d: %w", seq, err)
	}
	typ, payload, _, err := parseRecord(buf)
	if err != nil || (typ != recMessage && typ != recKeyed) || len(payload) < 8 || binary.LittleEndian.Uint64(payload) != seq {
		return "", nil, fmt.Errorf("store: message %d: %w", seq, errTorn)
	}
	key, body, err := splitKey(typ, payload[8:])
	if err != nil {
		return "", nil, fmt.Errorf("store: message %d: %w", seq, err)
	}
	m, err = message.DecodeMessage(body)
	return key, m, err
}

// NextSeq implements broker.Log: one past the highest sequence number the
// log has ever held, acked ones included, so a restarted queue never reuses
// a number an ack record refers to.
func (l *QueueLog) NextSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeqLocked()
}

func (l *QueueLog) nextSeqLocked() uint64 {
	var next uint64
	for _, s := range l.segs {
		next = max(next, s.base)
		if len(s.idx) > 0 {
			next = max(next, s.maxSeq+1)
		}
	}
	return next
}

// Recovered implements broker.Log.
func (l *QueueLog) Recovered() []message.StoredMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recovered
	l.recovered = nil
	return r
}

// Close implements broker.Log: it flushes and syncs what is buffered. A
// failure is logged, not returned: see closeLocked.
func (l *QueueLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

func (l *QueueLog) closeLocked() error {
	if l.closed {
		return nil
	}
	pendingAcks := len(l.acks) + len(l.dels)
	err := l.flushLocked()
	if n := len(l.segs); n > 0 && err == nil {
		err = l.segs[n-1].file.Sync()
	}
	for _, s := range l.segs {
		_ = s.file.Close()
	}
	l.closed = true
	if err != nil {
		// Every confirmed message was fsynced before its confirm; what
		// is lost here is acks and deliveries (those messages come back,
		// redelivered) and unconfirmed publishes. Not a failure of the
		// shutdown: a full disk must not turn a clean stop into an error.
		l.st.log.Warn("could not write the last acks at close; those messages will be redelivered",
			"queue_id", l.id, "acks", pendingAcks, "err", err)
	}
	return nil
}

// commit is what one group commit does with one log.
type commit struct {
	file       vfs.File
	seg        *segment
	off        int64  // the segment's flushed end the fsync covers
	acks, dels int    // its ack and delivered lists, as far as the fsync covers them
	upTo       uint64 // one past the seq durable once synced
	comps      []completion
	settled    []completion // already decided (failures, a deleted queue)
	err        error        // the flush failed
}

// commitFile flushes the log and returns what an fsync must cover and the
// completions it decides. Called by the committer.
func (l *QueueLog) commitFile() commit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c commit
	if l.closed {
		// A deleted queue: its publishes are done with, as in RabbitMQ.
		c.settled = append(append(append(c.settled, l.settled...), l.written...), l.bufComps...)
		l.settled, l.written, l.bufComps = nil, nil, nil
		return c
	}
	clear(l.cutsSince)
	l.cutsSince = l.cutsSince[:0]
	c.err = l.flushLocked()
	c.settled, l.settled = l.settled, nil
	if c.err != nil {
		return c
	}
	if l.offsetsDirty {
		l.offsetsDirty = false
		if err := l.saveOffsetsLocked(); err != nil {
			l.st.log.Warn("could not store stream consumer offsets", "queue_id", l.id, "err", err)
		}
	}
	if l.dirDirty {
		l.dirDirty = false
		_ = l.st.fs.SyncDir(l.dir)
	}
	c.comps, l.written, l.spareComps = l.written, l.spareComps, nil
	if len(l.segs) == 0 {
		return c
	}
	s := l.segs[len(l.segs)-1]
	c.file, c.seg, c.off, c.acks, c.dels, c.upTo = s.file, s, s.flushed, len(s.acks), len(s.dels), l.appended
	return c
}

// recycle hands back a commit's completion slice once it is delivered, so
// steady publishing allocates none.
func (l *QueueLog) recycle(comps []completion) {
	if cap(comps) == 0 {
		return
	}
	clear(comps)
	l.mu.Lock()
	if l.spareComps == nil {
		l.spareComps = comps[:0]
	}
	l.mu.Unlock()
}

// synced records a good fsync of c.
func (l *QueueLog) synced(c *commit) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.cutUnderLocked(c); err != nil {
		return err
	}
	if !l.closed {
		l.syncedLocked(c.seg, c.off, c.acks, c.dels)
	}
	return nil
}

// cutMark is a cut of segment seg back to off after err.
type cutMark struct {
	seg *segment
	off int64
	err error
}

// cutUnderLocked returns the error of a cut, made while c's fsync was in
// flight, that removed records c covers (below c.off in c's segment):
// c's completions must fail with it, whatever the fsync said.
func (l *QueueLog) cutUnderLocked(c *commit) error {
	for _, m := range l.cutsSince {
		if m.seg == c.seg && m.off < c.off {
			return m.err
		}
	}
	return nil
}

// syncFailed handles a failed fsync of c: the active segment is cut back to
// its last good fsync; a segment sealed meanwhile cannot be, and the log
// refuses further appends. It returns the completions the failure decided,
// c's among them.
//
// A segment no longer in the log (every message in it consumed: a drained
// log started over, or a consumed head segment was dropped) or a closed log
// (a deleted queue) had its file closed under the fsync, which then fails
// with "file already closed": that is no storage failure, and c's
// publishes are confirmed — consumed or deleted, they need no disk, as in
// RabbitMQ. A consumer acks before the fsync returns, so this happens
// under a steady durable load.
func (l *QueueLog) syncFailed(c *commit, err error) []completion {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cut := l.cutUnderLocked(c); cut != nil {
		// A cut during the fsync removed c's records: they failed, and
		// the cut already settled what was written after them.
		for i := range c.comps {
			c.comps[i].err = cut
		}
		out := append(c.comps, l.settled...)
		l.settled = nil
		return out
	}
	if l.closed || !slices.Contains(l.segs, c.seg) {
		return c.comps
	}
	out := make([]completion, 0, len(c.comps)+len(l.settled))
	for _, cp := range c.comps {
		cp.err = err
		out = append(out, cp)
	}
	if n := len(l.segs); l.segs[n-1] == c.seg && !c.seg.sealed {
		l.cutLocked(c.seg, c.seg.synced, err)
	} else {
		if l.failed == nil {
			l.failed = err
		}
		for _, list := range [][]completion{l.written, l.bufComps} {
			for _, c := range list {
				c.err = err
				l.settled = append(l.settled, c)
			}
		}
		l.written, l.bufComps = nil, nil
	}
	out = append(out, l.settled...)
	l.settled = nil
	return out
}

// fail makes the log refuse further appends after an fsync of file that
// cannot be undone (interval mode confirmed the data already). A file no
// longer the log's (see syncFailed) was closed under the fsync: no failure.
func (l *QueueLog) fail(file vfs.File, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failed != nil {
		return
	}
	for _, s := range l.segs {
		if s.file == file {
			l.failed = err
			return
		}
	}
}

// seqRange is an inclusive range of sequence numbers.
type seqRange struct{ first, last uint64 }

// wasRefusedLocked reports whether seq's record was cut away by a failure.
// The newest ranges are the likeliest, so it looks from the end.
func (l *QueueLog) wasRefusedLocked(seq uint64) bool {
	for i := len(l.refused) - 1; i >= 0; i-- {
		if r := l.refused[i]; seq >= r.first && seq <= r.last {
			return true
		}
	}
	return false
}

// OnRefused registers f to learn which sequence numbers a failure cut
// away, so a queue can forget the messages it still lists for them. f runs
// with the log's lock held and must not call into the log.
func (l *QueueLog) OnRefused(f func(first, last uint64)) {
	l.mu.Lock()
	l.onRefused = f
	l.mu.Unlock()
}
