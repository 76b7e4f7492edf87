// Package memstore is an in-memory broker.Storage for tests, in the spirit
// of hashicorp/raft's InmemStore: the broker core runs against it exactly as
// against the disk store (same interfaces, same recovery contract), so core
// tests need neither a data directory nor the store package.
//
// What it models: definitions as the disk store keeps them, a snapshot
// (SaveDefinitions) plus the commands appended since (AppendCommand), handed
// back for Broker.Restore and Broker.Replay, with a snapshot asked for every
// SnapshotEvery commands;
// per-queue logs with append, ack, delivered marks, reads, recovery of the
// unacknowledged messages in sequence order and sequence numbering that
// resumes past every sequence ever used; stream logs with a durable end,
// segments, retention, filter hashes, time lookup and stored offsets; and
// completions (and a stream's durable callback) delivered in append order
// from a goroutine of the log's, never from inside Append.
//
// What it does not model: fsync, torn writes, crashes part-way through a
// commit, disk-full and read errors (everything appended is "durable" at
// once; SetAppendError makes message appends fail instead), paging costs, and
// segment sizes in record bytes (a stream segment counts body bytes).
// Reopening a log (a "restart": a new broker on the same Store) detaches
// the previous handle: whatever the old broker still does with it is
// ignored, as if that process had died.
package memstore

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// errDetached is what a stale handle's Append returns after a reopen.
var errDetached = errors.New("memstore: log reopened by a newer broker")

// Store is an in-memory broker.Storage. The zero value is not usable; call
// New.
type Store struct {
	mu        sync.Mutex
	defs      *broker.Definitions // the last snapshot
	cmds      []broker.Command    // commands appended since
	cmdSeq    uint64              // sequence number of the last command appended
	logs      map[string]*data
	appendErr error
	saves     int
}

// SnapshotEvery is how many commands the store takes before SnapshotDue
// asks the broker for a snapshot: small, so core tests exercise snapshots
// as well as replay.
const SnapshotEvery = 16

// New returns an empty store.
func New() *Store { return &Store{logs: map[string]*data{}} }

var _ broker.Storage = (*Store)(nil)

// Definitions returns a copy of the snapshot last saved (empty if none), to
// pass to a new broker's Restore; Commands has the commands logged since.
func (s *Store) Definitions() *broker.Definitions {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.defs == nil {
		return &broker.Definitions{}
	}
	return copyDefs(s.defs)
}

// Saves counts SaveDefinitions calls.
func (s *Store) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// Commands returns the commands appended since the last snapshot, in
// order, to pass to a new broker's Replay after Restore.
func (s *Store) Commands() []broker.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cmds)
}

// AppendCommand logs c; it is durable at once.
func (s *Store) AppendCommand(c broker.Command) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, c)
	s.cmdSeq++
	return s.cmdSeq, nil
}

// SyncCommands returns at once: every appended command is durable. A
// sequence number never handed out is the broker's bug.
func (s *Store) SyncCommands(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.cmdSeq {
		return fmt.Errorf("memstore: sync of command %d, only %d appended", seq, s.cmdSeq)
	}
	return nil
}

// SnapshotDue says SnapshotEvery commands were appended since the last
// snapshot.
func (s *Store) SnapshotDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cmds) >= SnapshotEvery
}

// SaveDefinitions makes a copy of d the snapshot and starts the command log
// over.
func (s *Store) SaveDefinitions(d *broker.Definitions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.defs = copyDefs(d)
	s.cmds = nil
	s.saves++
	return nil
}

func copyDefs(d *broker.Definitions) *broker.Definitions {
	return &broker.Definitions{
		VHosts:    slices.Clone(d.VHosts),
		Exchanges: slices.Clone(d.Exchanges),
		Queues:    slices.Clone(d.Queues),
		Bindings:  slices.Clone(d.Bindings),

		Users:            slices.Clone(d.Users),
		Permissions:      slices.Clone(d.Permissions),
		TopicPermissions: slices.Clone(d.TopicPermissions),
		VHostLimits:      slices.Clone(d.VHostLimits),
		UserLimits:       slices.Clone(d.UserLimits),
		Policies:         slices.Clone(d.Policies),
		OperatorPolicies: slices.Clone(d.OperatorPolicies),
	}
}

// SetAppendError makes every later Append fail with err (nil: succeed
// again), standing in for a store that cannot write.
func (s *Store) SetAppendError(err error) {
	s.mu.Lock()
	s.appendErr = err
	s.mu.Unlock()
}

func (s *Store) appendError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendErr
}

// HasLog reports whether a log with this id exists (was opened and not
// deleted).
func (s *Store) HasLog(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.logs[id]
	return ok
}

// QueueLog opens the log of a durable queue, recovering its messages if it
// exists.
func (s *Store) QueueLog(id string) (broker.Log, error) {
	return s.open(id, false, 0), nil
}

// StreamLog opens the log of a stream; segmentSize <= 0 means 1 MiB.
func (s *Store) StreamLog(id string, segmentSize int64) (broker.StreamLog, error) {
	if segmentSize <= 0 {
		segmentSize = 1 << 20
	}
	return s.open(id, true, segmentSize), nil
}

// DeleteQueueLog forgets a log.
func (s *Store) DeleteQueueLog(id string) error {
	s.mu.Lock()
	d := s.logs[id]
	delete(s.logs, id)
	s.mu.Unlock()
	if d != nil {
		d.mu.Lock()
		d.gen++ // detach the handle
		d.mu.Unlock()
	}
	return nil
}

func (s *Store) open(id string, stream bool, segmentSize int64) *Log {
	s.mu.Lock()
	d := s.logs[id]
	if d == nil {
		d = &data{stream: stream, segSize: segmentSize, offsets: map[string]uint64{}}
		s.logs[id] = d
	}
	s.mu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	d.durable = d.next // everything appended before the reopen is durable
	l := &Log{st: s, d: d, gen: d.gen}
	if !stream {
		for _, r := range d.recs {
			l.recovered = append(l.recovered, message.StoredMessage{
				Seq: r.seq, Size: r.msg.Size(), Published: r.msg.Published, TTL: r.ttl, HasTTL: r.hasTTL,
				Priority: r.msg.Props.Priority, Delivered: r.delivered,
			})
		}
	}
	return l
}

// data is what survives a "restart": the records of one log.
type data struct {
	mu      sync.Mutex
	gen     int // the generation of the attached handle
	stream  bool
	segSize int64
	recs    []*record // ascending seq; a queue's acked records are removed
	next    uint64    // one past the highest seq ever appended
	durable uint64    // streams: one past the highest completed seq
	offsets map[string]uint64

	onDurable func()
}

type record struct {
	seq       uint64
	msg       *message.Message
	ttl       time.Duration
	hasTTL    bool
	delivered bool
	seg       int // streams: the segment number
	segBytes  int64
}

type pending struct {
	done  message.Completion
	token uint64
	seq   uint64
}

// Log is one open log (a queue's or a stream's).
type Log struct {
	st        *Store
	d         *data
	gen       int
	recovered []message.StoredMessage

	cmu      sync.Mutex // guards the completion queue
	queue    []pending
	flushing bool
}

var (
	_ broker.Log       = (*Log)(nil)
	_ broker.StreamLog = (*Log)(nil)
)

// AppendNext stores msg at the next offset. The memstore never takes back
// a record it accepted, so the next offset is one past the highest seq:
// the broker calls it under the stream's lock, so no other append races.
func (l *Log) AppendNext(msg *message.Message, done message.Completion, token uint64) (uint64, error) {
	seq := l.NextSeq()
	return seq, l.Append(seq, msg, done, token)
}

// live reports whether this handle is still the attached one; d.mu held.
func (l *Log) live() bool { return l.gen == l.d.gen }

// Append stores msg under seq; done learns from the log's goroutine.
func (l *Log) Append(seq uint64, msg *message.Message, done message.Completion, token uint64) error {
	if err := l.st.appendError(); err != nil {
		return fmt.Errorf("memstore: append: %w", err)
	}
	ttl, hasTTL, _ := msg.TTL()
	d := l.d
	d.mu.Lock()
	if !l.live() {
		d.mu.Unlock()
		return errDetached
	}
	r := &record{seq: seq, msg: msg, ttl: ttl, hasTTL: hasTTL}
	if d.stream {
		r.seg, r.segBytes = 0, msg.Size()
		if n := len(d.recs); n > 0 {
			last := d.recs[n-1]
			r.seg, r.segBytes = last.seg, last.segBytes+msg.Size()
			if last.segBytes > 0 && r.segBytes > d.segSize {
				r.seg, r.segBytes = last.seg+1, msg.Size()
			}
		}
	}
	// Keep recs in sequence order whatever order appends come in, so a
	// broker that reused sequence numbers recovers them where a disk
	// store would list them.
	i, _ := slices.BinarySearchFunc(d.recs, seq, cmpSeq)
	d.recs = slices.Insert(d.recs, i, r)
	d.next = max(d.next, seq+1)
	d.mu.Unlock()
	l.complete(pending{done: done, token: token, seq: seq})
	return nil
}

// complete queues a completion for the log's goroutine, started when work
// arrives and gone when none is left, so completions keep append order and
// never run under the caller's (the queue's) lock.
func (l *Log) complete(p pending) {
	l.cmu.Lock()
	l.queue = append(l.queue, p)
	start := !l.flushing
	l.flushing = true
	l.cmu.Unlock()
	if start {
		go l.flush()
	}
}

func (l *Log) flush() {
	for {
		l.cmu.Lock()
		batch := l.queue
		l.queue = nil
		if len(batch) == 0 {
			l.flushing = false
			l.cmu.Unlock()
			return
		}
		l.cmu.Unlock()
		var batchers []message.BatchCompletion
		for _, p := range batch {
			if p.done == nil {
				continue
			}
			p.done.Durable(p.token, nil)
			if bc, ok := p.done.(message.BatchCompletion); ok && !slices.Contains(batchers, bc) {
				batchers = append(batchers, bc)
			}
		}
		for _, bc := range batchers {
			bc.DurableBatchEnd()
		}
		l.d.mu.Lock()
		var f func()
		if l.live() && l.d.stream {
			l.d.durable = max(l.d.durable, batch[len(batch)-1].seq+1)
			f = l.d.onDurable
		}
		l.d.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

func cmpSeq(r *record, seq uint64) int {
	switch {
	case r.seq < seq:
		return -1
	case r.seq > seq:
		return 1
	}
	return 0
}

func (d *data) find(seq uint64) int {
	i, ok := slices.BinarySearchFunc(d.recs, seq, cmpSeq)
	if !ok {
		return -1
	}
	return i
}

// Ack forgets seq (a queue's log; a stream keeps its messages).
func (l *Log) Ack(seq uint64) {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !l.live() || d.stream {
		return
	}
	if i := d.find(seq); i >= 0 {
		d.recs = slices.Delete(d.recs, i, i+1)
	}
}

// Delivered marks seq delivered, so it recovers as redelivered.
func (l *Log) Delivered(seq uint64) {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !l.live() {
		return
	}
	if i := d.find(seq); i >= 0 {
		d.recs[i].delivered = true
	}
}

// Read returns the stored message seq.
func (l *Log) Read(seq uint64) (*message.Message, error) {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.find(seq); i >= 0 {
		return d.recs[i].msg, nil
	}
	return nil, fmt.Errorf("memstore: no message %d", seq)
}

// Recovered lists the unacknowledged messages found at open (none for a
// stream, which keeps no ready list).
func (l *Log) Recovered() []message.StoredMessage { return l.recovered }

// NextSeq is one past the highest sequence number ever appended.
func (l *Log) NextSeq() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.next
}

// Close detaches nothing: the data stays for the next open.
func (l *Log) Close() error { return nil }

// DurableSeq is one past the highest completed offset.
func (l *Log) DurableSeq() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.d.durable
}

// FirstSeq is the oldest offset held, or DurableSeq when empty.
func (l *Log) FirstSeq() uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if len(l.d.recs) > 0 {
		return l.d.recs[0].seq
	}
	return l.d.durable
}

// SeqAtTime is the first offset published at or after ts, else NextSeq.
func (l *Log) SeqAtTime(ts int64) uint64 {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	for _, r := range l.d.recs {
		if r.msg.Published >= ts {
			return r.seq
		}
	}
	return l.d.next
}

// OnDurable registers f, called from the log's goroutine without locks.
func (l *Log) OnDurable(f func()) {
	l.d.mu.Lock()
	l.d.onDurable = f
	l.d.mu.Unlock()
}

// ApplyRetention drops whole head segments (never the newest) while one is
// outside the newest maxLen messages or maxBytes body bytes, or all older
// than maxAge; a limit below 0 (or a zero maxAge) is off.
func (l *Log) ApplyRetention(maxLen, maxBytes int64, maxAge time.Duration) int {
	d := l.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var count, bytes int64
	for _, r := range d.recs {
		count++
		bytes += r.msg.Size()
	}
	dropped := 0
	for len(d.recs) > 0 && d.recs[0].seg != d.recs[len(d.recs)-1].seg {
		seg := d.recs[0].seg
		n := 0
		var segBytes int64
		for n < len(d.recs) && d.recs[n].seg == seg {
			segBytes += d.recs[n].msg.Size()
			n++
		}
		past := (maxLen >= 0 && count-int64(n) >= maxLen) || (maxBytes >= 0 && bytes-segBytes >= maxBytes)
		if maxAge > 0 && time.Since(time.Unix(0, d.recs[n-1].msg.Published)) > maxAge {
			past = true
		}
		if !past {
			break
		}
		d.recs = d.recs[n:]
		count, bytes = count-int64(n), bytes-segBytes
		dropped++
	}
	return dropped
}

// FilterHash is seq's stream filter hash (0 for none).
func (l *Log) FilterHash(seq uint64) (uint32, bool) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if i := l.d.find(seq); i >= 0 {
		return l.d.recs[i].msg.StreamFilterHash(), true
	}
	return 0, false
}

// StoreOffset keeps a named consumer's offset; it never goes back.
func (l *Log) StoreOffset(name string, offset uint64) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	if cur, ok := l.d.offsets[name]; ok && cur >= offset {
		return
	}
	l.d.offsets[name] = offset
}

// StoredOffset returns a named consumer's stored offset.
func (l *Log) StoredOffset(name string) (uint64, bool) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	v, ok := l.d.offsets[name]
	return v, ok
}
