package store

import (
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"github.com/tern-broker/tern/internal/message"
)

// RecordLog is a keyed set of messages in a log of its own, under
// records/<name>: each key holds at most one message. Putting a key appends
// a keyed record and acknowledges the key's previous record; removing a key
// acknowledges its record. It is a QueueLog underneath, so it has the same
// framing (CRC-32C per record), group commit, recovery (torn tail cut,
// acks applied) and failure handling; only the record carries its key.
//
// It keeps MQTT retained messages (key: vhost and topic) and the
// persistent messages waiting in delayed-message exchanges (key: vhost,
// exchange and an id).
//
// Compaction: a segment is deleted once every record in it is
// acknowledged, so a record that stays (a retained message set once)
// would pin its segment and the dead records around it. When the log has
// recordCompactSegments segments or more, the live records of the oldest
// are appended again at the end (same key: the copy supersedes the
// original), which frees it. A crash between the copy and the ack leaves
// two records of a key; recovery keeps the later one.
type RecordLog struct {
	q *QueueLog

	mu      sync.Mutex
	keys    map[string]uint64 // key → seq of its live record
	pending map[uint64]bool   // records replaced, acknowledged once their successor is durable
	// compacting is set while a compaction started by an fsync runs.
	compacting bool
	next       uint64
}

// Record is a recovered record.
type Record struct {
	Key string
	Msg *message.Message
}

// recordCompactSegments is the segment count from which the oldest
// segment's live records are moved forward.
const recordCompactSegments = 3

// recordSegmentSize is a record log's segment size: small, so compaction
// works on little data and a compacted log stays small.
const recordSegmentSize = 4 << 20

// RecordLog opens (recovering) the record log name and returns its live
// records, oldest first. Only one RecordLog per name may be open.
func (s *Store) RecordLog(name string) (*RecordLog, []Record, error) {
	return s.recordLog(name, recordSegmentSize)
}

func (s *Store) recordLog(name string, segSize int64) (*RecordLog, []Record, error) {
	if name == "" || filepath.Base(name) != name {
		return nil, nil, fmt.Errorf("store: invalid record log name %q", name)
	}
	id := "records/" + name
	s.mu.Lock()
	if _, ok := s.logs[id]; ok {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("store: record log %s is already open", name)
	}
	q, err := s.openLogIn(filepath.Join(s.dir, "records", name), id, min(segSize, s.opts.SegmentSize))
	if err == nil {
		s.logs[id] = q
	}
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	r := &RecordLog{q: q, keys: map[string]uint64{}, pending: map[uint64]bool{}, next: q.NextSeq()}
	type live struct {
		seq uint64
		rec Record
	}
	byKey := map[string]live{}
	for _, sm := range q.Recovered() { // in seq order
		key, m, err := q.readRecord(sm.Seq)
		if err != nil {
			s.mu.Lock()
			delete(s.logs, id)
			s.mu.Unlock()
			_ = q.Close()
			return nil, nil, fmt.Errorf("store: record log %s: %w", name, err)
		}
		if old, ok := byKey[key]; ok {
			q.Ack(old.seq) // superseded; only a crash during compaction leaves these
		}
		byKey[key] = live{sm.Seq, Record{Key: key, Msg: m}}
	}
	recs := make([]live, 0, len(byKey))
	for k, l := range byKey {
		r.keys[k] = l.seq
		recs = append(recs, l)
	}
	slices.SortFunc(recs, func(a, b live) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Record, len(recs))
	for i, l := range recs {
		out[i] = l.rec
	}
	r.mu.Lock()
	r.compactLocked()
	r.mu.Unlock()
	return r, out, nil
}

// Put stores m under key, replacing the key's previous message. done (may
// be nil) learns when the record is durable, as for a queue's message.
func (r *RecordLog) Put(key string, m *message.Message, done message.Completion, token uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.putLocked(key, m, done, token); err != nil {
		return err
	}
	r.compactLocked()
	return nil
}

func (r *RecordLog) putLocked(key string, m *message.Message, done message.Completion, token uint64) error {
	seq := r.next
	old, hadOld := r.keys[key]
	sup := &supersede{r: r, key: key, seq: seq, old: old, hadOld: hadOld, done: done, token: token}
	r.q.mu.Lock()
	err := r.q.appendLocked(seq, key, true, m, sup, 0)
	r.q.mu.Unlock()
	if err != nil {
		return err
	}
	r.next++
	r.keys[key] = seq
	if hadOld {
		r.pending[old] = true
	}
	return nil
}

// supersede acknowledges a key's previous record once the new one is
// durable, not before: were the new record's write or fsync to fail, the
// previous one must still be there.
type supersede struct {
	r        *RecordLog
	key      string
	seq, old uint64
	hadOld   bool
	done     message.Completion
	token    uint64
}

func (s *supersede) Durable(_ uint64, err error) {
	r := s.r
	r.mu.Lock()
	if s.hadOld {
		delete(r.pending, s.old)
	}
	cur, ok := r.keys[s.key]
	switch {
	case !s.hadOld:
		if err != nil && ok && cur == s.seq {
			delete(r.keys, s.key)
		}
	case err == nil || !ok:
		r.q.Ack(s.old) // replaced durably, or the key was removed since
		r.compactSoonLocked()
	case cur == s.seq || !r.live(cur):
		// The new record is lost: the key keeps its previous message, as
		// on disk.
		if r.live(s.old) {
			r.keys[s.key] = s.old
		} else if cur == s.seq {
			delete(r.keys, s.key)
		}
	}
	r.mu.Unlock()
	if s.done != nil {
		s.done.Durable(s.token, err)
	}
}

// compactSoonLocked starts a compaction in the background when the log
// has enough segments for one: acks arrive with fsyncs, after the puts
// that would otherwise have compacted, and the committer must not wait
// for the copying.
func (r *RecordLog) compactSoonLocked() {
	r.q.mu.Lock()
	n := len(r.q.segs)
	r.q.mu.Unlock()
	if r.compacting || n < recordCompactSegments {
		return
	}
	r.compacting = true
	go func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.compactLocked()
		r.compacting = false
	}()
}

// DurableBatchEnd passes the end of a group commit on to a completion that
// answers per batch (an AMQP channel's confirms).
func (s *supersede) DurableBatchEnd() {
	if b, ok := s.done.(message.BatchCompletion); ok {
		b.DurableBatchEnd()
	}
}

func (r *RecordLog) live(seq uint64) bool {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	seg := r.q.segmentOf(seq)
	return seg != nil && seg.has(seq)
}

// Remove deletes key's message (an ack record, written with the next group
// commit; nothing waits for it).
func (r *RecordLog) Remove(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq, ok := r.keys[key]; ok {
		delete(r.keys, key)
		r.q.Ack(seq)
	}
}

// Len returns the number of keys held.
func (r *RecordLog) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// compactLocked moves the live records of the oldest segment to the end
// while the log has too many segments and dead records dominate (so live
// data larger than a few segments is not copied round and round). Bounded:
// each round empties one segment, at most 8 rounds per call.
func (r *RecordLog) compactLocked() {
	for range 8 {
		r.q.mu.Lock()
		total, live := 0, 0
		for _, s := range r.q.segs {
			total += len(s.idx)
			live += s.live
		}
		live -= len(r.pending) // replaced, only waiting for their successor's fsync
		if len(r.q.segs) < recordCompactSegments || !r.q.segs[0].sealed || live*2 > total {
			r.q.mu.Unlock()
			return
		}
		old := r.q.segs[0]
		var seqs []uint64
		for i, e := range old.idx {
			if old.acked[i/64]&(1<<(i%64)) == 0 && !r.pending[e.seq] {
				seqs = append(seqs, e.seq)
			}
		}
		r.q.mu.Unlock()
		if len(seqs) == 0 {
			return // what is left waits for its copies' fsync
		}
		for _, seq := range seqs {
			key, m, err := r.q.readRecord(seq)
			switch {
			case err != nil:
			case r.keys[key] == seq:
				err = r.putLocked(key, m, nil, 0)
			default:
				r.q.Ack(seq) // not the key's record: nothing refers to it
			}
			if err != nil {
				r.q.st.log.Warn("record log compaction stopped", "log", r.q.id, "err", err)
				return // tried again with the next put
			}
		}
	}
}
