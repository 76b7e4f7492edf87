package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/vfs"
)

// openLog opens a queue's log directory and recovers it: sealed segments
// through their sidecar index, the active (last) segment by scanning its
// records up to the first torn or corrupt one, which is cut off.
func (s *Store) openLog(id string, segSize int64) (*QueueLog, error) {
	return s.openLogIn(s.queueDir(id), id, segSize)
}

// openLogIn opens and recovers the log in dir. A missing directory is a
// new log whose directory is made with its first segment (noDir).
func (s *Store) openLogIn(dir, id string, segSize int64) (*QueueLog, error) {
	l := &QueueLog{st: s, id: id, dir: dir, segSize: segSize}
	names, err := s.fs.List(dir)
	if errors.Is(err, vfs.ErrNotExist) {
		// A new queue: its directory waits for its first message, so
		// declaring and deleting an empty queue costs no directory
		// operations (issue 11: 10,000 declares and deletes).
		l.noDir = true
	} else if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var bases []uint64
	for _, n := range names {
		if b, ok := parseSegmentName(n); ok {
			bases = append(bases, b)
		}
	}
	slices.Sort(bases)

	start := time.Now()
	type found struct {
		seg *segment
		res scanResult
	}
	var all []found
	for i, base := range bases {
		seg := &segment{base: base, path: segmentName(dir, base)}
		last := i == len(bases)-1
		res, err := s.loadSegment(seg, last)
		if err != nil {
			return nil, err
		}
		all = append(all, found{seg, res})
	}

	// Acks and deliveries may sit in any segment at or after the message.
	acked, delivered := map[uint64]bool{}, map[uint64]bool{}
	for _, f := range all {
		for _, q := range f.res.acks {
			acked[q] = true
		}
		for _, q := range f.res.dels {
			delivered[q] = true
		}
	}
	for _, f := range all {
		seg := f.seg
		last := seg == all[len(all)-1].seg
		for _, m := range f.res.msgs {
			if m.seq < seg.base || !seg.add(m, last) {
				continue // only a corrupt file holds these
			}
			if acked[m.seq] {
				seg.ack(m.seq)
				continue
			}
			sm := message.StoredMessage{Seq: m.seq, Size: int64(m.size), Published: m.published, Priority: m.prio, Delivered: delivered[m.seq]}
			if m.ttlMs >= 0 {
				sm.TTL, sm.HasTTL = time.Duration(m.ttlMs)*time.Millisecond, true
			}
			l.recovered = append(l.recovered, sm)
		}
		if last {
			seg.acks, seg.dels = f.res.acks, f.res.dels
			seg.syncedAcks, seg.syncedDels = len(seg.acks), len(seg.dels)
		}
		l.segs = append(l.segs, seg)
	}
	// Messages are recovered in sequence order, which is publish order.
	slices.SortFunc(l.recovered, func(a, b message.StoredMessage) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	l.appended = l.nextSeqLocked()
	l.durable = l.appended // what recovery finds on disk is what survived
	l.dropConsumedLocked()
	if len(all) > 0 {
		s.log.Info("recovered queue log", "queue_id", id, "segments", len(l.segs),
			"messages", len(l.recovered), "took", time.Since(start).Round(time.Millisecond))
	}
	return l, nil
}

// loadSegment reads a segment's index (sealed) or records (active), leaving
// seg ready: a read handle for sealed ones, a write handle for the active.
func (s *Store) loadSegment(seg *segment, active bool) (scanResult, error) {
	if !active {
		if raw, err := vfs.ReadFile(s.fs, seg.idxPath()); err == nil {
			if res, err := decodeIndex(raw, seg.base); err == nil {
				f, err := s.fs.Open(seg.path)
				if err != nil {
					return res, fmt.Errorf("store: %w", err)
				}
				size, _ := f.Size()
				seg.file, seg.end, seg.flushed, seg.synced, seg.sealed = f, size, size, size, true
				return res, nil
			}
			s.log.Warn("segment index unreadable, rescanning the segment", "segment", seg.path)
		}
	}
	raw, err := vfs.ReadFile(s.fs, seg.path)
	if err != nil {
		return scanResult{}, fmt.Errorf("store: %w", err)
	}
	res, valid := scanRecords(raw)
	if valid < len(raw) {
		s.log.Warn("dropping torn or corrupt tail", "segment", seg.path, "kept_bytes", valid, "dropped_bytes", len(raw)-valid)
	}
	if !active {
		// A sealed segment without a usable index: keep its valid prefix
		// and write the index for next time.
		f, err := s.fs.Open(seg.path)
		if err != nil {
			return res, fmt.Errorf("store: %w", err)
		}
		seg.file, seg.end, seg.flushed, seg.synced, seg.sealed = f, int64(valid), int64(valid), int64(valid), true
		seg.meta, seg.acks, seg.dels = res.msgs, res.acks, res.dels
		if err := vfs.WriteFileAtomic(s.fs, seg.idxPath(), seg.encodeIndex()); err != nil {
			s.log.Warn("could not rewrite segment index", "segment", seg.path, "err", err)
		}
		seg.meta, seg.acks, seg.dels = nil, nil, nil
		return res, nil
	}
	f, err := s.fs.OpenWrite(seg.path)
	if err != nil {
		return res, fmt.Errorf("store: %w", err)
	}
	if valid < len(raw) {
		if err := f.Truncate(int64(valid)); err != nil {
			_ = f.Close()
			return res, fmt.Errorf("store: truncating torn tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return res, fmt.Errorf("store: %w", err)
		}
	}
	// What recovery finds is the known good end a failed fsync cuts back to.
	seg.file, seg.end, seg.flushed, seg.synced = f, int64(valid), int64(valid), int64(valid)
	return res, nil
}

// scanRecords parses records from the start of raw and returns what they
// hold and the length of the valid prefix.
func scanRecords(raw []byte) (scanResult, int) {
	var res scanResult
	off := 0
	for off < len(raw) {
		typ, payload, n, err := parseRecord(raw[off:])
		if err != nil {
			break
		}
		ok := true
		switch typ {
		case recMessage, recKeyed:
			m, err := messageMeta(typ, payload)
			if err != nil {
				ok = false
				break
			}
			m.off, m.ln = uint32(off), uint32(n)
			res.msgs = append(res.msgs, m)
		case recAck, recDelivered:
			list, err := seqs(payload)
			if err != nil {
				ok = false
				break
			}
			if typ == recAck {
				res.acks = append(res.acks, list...)
			} else {
				res.dels = append(res.dels, list...)
			}
		default:
			ok = false
		}
		if !ok {
			break
		}
		off += n
	}
	return res, off
}

func messageMeta(typ byte, payload []byte) (msgMeta, error) {
	if len(payload) < 8 {
		return msgMeta{}, errTorn
	}
	_, body, err := splitKey(typ, payload[8:])
	if err != nil {
		return msgMeta{}, err
	}
	m, err := message.DecodeMessage(body)
	if err != nil {
		return msgMeta{}, err
	}
	meta := msgMeta{seq: binary.LittleEndian.Uint64(payload), published: m.Published, ttlMs: -1,
		prio: m.Props.Priority, size: uint32(len(m.Body)), filter: m.StreamFilterHash()}
	if m.Props.Expiration != "" {
		var v int64
		if _, err := fmt.Sscan(m.Props.Expiration, &v); err == nil {
			meta.ttlMs = v
		}
	}
	return meta, nil
}
