package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/codec"
	"github.com/tern-broker/tern/internal/vfs"
)

// QueueLog is the segmented log of one durable queue; it implements
// broker.Log.
type QueueLog struct {
	st  *Store
	id  string
	dir string

	mu           sync.Mutex
	segs         []*segment       // oldest first; the last one is active
	buf          []byte           // message records not yet written to the OS
	bufSeqs      []uint64         // their seqs, forgotten if the write fails
	acks         []uint64         // ack seqs to write with the next flush
	dels         []uint64         // delivered seqs to write with the next flush
	failed       error            // sticky: the log can no longer be written
	gen          uint64           // generation of the records in buf; each flush ends one
	genErrs      map[uint64]error // generations whose write failed
	closed       bool
	dirDirty     bool              // segments were created or removed since the last directory sync
	segSize      int64             // roll segments past this size
	appended     uint64            // one past the highest seq appended
	durable      uint64            // one past the highest seq known durable (streams read up to here)
	onDurable    func()            // called (without locks) when durable advances
	offsets      map[string]uint64 // streams: consumer name → last acknowledged offset
	offsetsDirty bool
	recovered    []broker.StoredMessage
}

var errClosed = errors.New("store: log closed")

// Append implements broker.Log.
func (l *QueueLog) Append(seq uint64, m *broker.Message, done broker.Completion, token uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	if l.failed != nil {
		return l.failed
	}
	seg, err := l.activeFor(seq)
	if err != nil {
		return err
	}
	start := len(l.buf)
	l.buf = append(l.buf, 0, 0, 0, 0, 0, 0, 0, 0, recMessage)
	l.buf = binary.LittleEndian.AppendUint64(l.buf, seq)
	l.buf = codec.AppendMessage(l.buf, m)
	body := l.buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(l.buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(l.buf[start+4:], crcOf(body))
	n := len(l.buf) - start

	ttl := int64(-1)
	if m.Props.Expiration != "" {
		if v, err := strconv.ParseInt(m.Props.Expiration, 10, 64); err == nil {
			ttl = v
		}
	}
	seg.add(msgMeta{seq: seq, off: uint32(seg.end), ln: uint32(n), published: m.Published, ttlMs: ttl,
		prio: m.Props.Priority, size: uint32(len(m.Body)), filter: filterOf(m)}, true)
	seg.end += int64(n)
	l.appended = max(l.appended, seq+1)
	l.bufSeqs = append(l.bufSeqs, seq)
	l.st.com.add(l, done, token, l.gen, true)
	return nil
}

// activeFor returns the segment to append seq to, rolling to a new one when
// the active segment is full.
func (l *QueueLog) activeFor(seq uint64) (*segment, error) {
	if n := len(l.segs); n > 0 {
		s := l.segs[n-1]
		if s.end < l.segSize && seq >= s.base && (len(s.idx) == 0 || seq > s.maxSeq) {
			return s, nil
		}
		if err := l.sealActive(); err != nil {
			return nil, err
		}
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
		l.failed = fmt.Errorf("store: fsync: %w", err)
		return l.failed
	}
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
	s := l.segs[len(l.segs)-1]
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
		if terr := s.file.Truncate(s.flushed); terr != nil {
			l.failed = fmt.Errorf("%w; truncating the torn write failed too: %v", werr, terr)
		}
		for i := len(l.bufSeqs) - 1; i >= 0; i-- {
			s.forget(l.bufSeqs[i])
		}
		s.end = s.flushed
		s.meta = s.meta[:len(s.meta)-min(len(s.meta), len(l.bufSeqs))]
		l.buf, l.bufSeqs = l.buf[:0], l.bufSeqs[:0]
		if l.genErrs == nil {
			l.genErrs = map[uint64]error{}
		}
		l.genErrs[l.gen] = werr
		delete(l.genErrs, l.gen-64) // completions never lag that far behind
		l.gen++
		return werr
	}
	// The sidecar index of this segment must list the acks and deliveries
	// recorded in it.
	s.acks = append(s.acks, l.acks...)
	s.dels = append(s.dels, l.dels...)
	s.flushed += int64(len(l.buf))
	s.end = s.flushed
	l.buf, l.bufSeqs, l.acks, l.dels = l.buf[:0], l.bufSeqs[:0], l.acks[:0], l.dels[:0]
	l.gen++
	return nil
}

func appendSeqRecord(buf []byte, typ byte, list []uint64) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	for _, q := range list {
		buf = binary.LittleEndian.AppendUint64(buf, q)
	}
	body := buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crcOf(body))
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
	l.st.com.add(l, nil, 0, 0, false)
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
		l.st.com.add(l, nil, 0, 0, false)
	}
}

// dropConsumedLocked deletes sealed segments from the head while every
// message in them is consumed. Oldest first only, so the ack records that
// cancel a segment's messages (always in it or a later one) outlive them.
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
}

// Read implements broker.Log.
func (l *QueueLog) Read(seq uint64) (*broker.Message, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	s := l.segmentOf(seq)
	if s == nil || !s.has(seq) {
		return nil, fmt.Errorf("store: message %d is not in the log", seq)
	}
	e := s.idx[s.find(seq)]
	off, ln := int64(e.off), int64(e.ln)
	if off+ln > s.flushed {
		if err := l.flushLocked(); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, ln)
	if _, err := s.file.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("store: reading message %d: %w", seq, err)
	}
	typ, payload, _, err := parseRecord(buf)
	if err != nil || typ != recMessage || len(payload) < 8 || binary.LittleEndian.Uint64(payload) != seq {
		return nil, fmt.Errorf("store: message %d: %w", seq, errTorn)
	}
	return codec.DecodeMessage(payload[8:])
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
func (l *QueueLog) Recovered() []broker.StoredMessage {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.recovered
	l.recovered = nil
	return r
}

// Close implements broker.Log: it flushes and syncs what is buffered.
func (l *QueueLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

func (l *QueueLog) closeLocked() error {
	if l.closed {
		return nil
	}
	err := l.flushLocked()
	if n := len(l.segs); n > 0 && err == nil {
		err = l.segs[n-1].file.Sync()
	}
	for _, s := range l.segs {
		_ = s.file.Close()
	}
	l.closed = true
	return err
}

// commitFile flushes the log and returns the file an fsync must cover and
// the seq that will be durable once it is synced. Called by the committer.
func (l *QueueLog) commitFile() (vfs.File, uint64, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, false, nil
	}
	if err := l.flushLocked(); err != nil {
		return nil, 0, false, err
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
	if len(l.segs) == 0 {
		return nil, 0, false, nil
	}
	return l.segs[len(l.segs)-1].file, l.appended, true, nil
}

// genErr reports whether the write of generation gen failed.
func (l *QueueLog) genErr(gen uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.genErrs[gen]
}

// fail makes the log refuse further appends after an fsync error: the
// kernel may have dropped the dirty pages, so nothing written since the last
// good fsync can be trusted to reach the disk.
func (l *QueueLog) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
}
