package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/tern-broker/tern/internal/record"
	"github.com/tern-broker/tern/internal/vfs"
)

// segment is one file of a queue log, named by the sequence number of its
// first message. Its index maps seq-base to the record's offset and length.
type segment struct {
	base    uint64
	path    string
	file    vfs.File // write handle for the active segment, read handle once sealed
	end     int64    // logical end: bytes flushed plus bytes waiting in the log's buffer
	flushed int64    // bytes handed to the OS
	synced  int64    // bytes known durable: the end of the last good fsync
	sealed  bool

	// The index: message records in append (= sequence) order, so a seq is
	// found by binary search; memory is proportional to the messages, not to
	// the range of sequence numbers (transient messages leave gaps).
	idx    []idxEntry
	acked  []uint64 // bitset by position in idx
	live   int
	maxSeq uint64 // highest seq recorded here (valid when len(idx) > 0)

	// Kept while active, written to the sidecar index when sealed.
	meta []msgMeta
	acks []uint64
	dels []uint64
	// How many of acks and dels the last good fsync covered: after a failed
	// fsync the rest are written again.
	syncedAcks, syncedDels int
}

// msgMeta is what recovery needs of a message without reading its body.
type msgMeta struct {
	seq       uint64
	off, ln   uint32
	published int64
	ttlMs     int64 // -1: no expiration property
	prio      uint8
	size      uint32 // body bytes
	filter    uint32 // FilterHash of the x-stream-filter-value header, 0 for none
}

const segExt, idxExt = ".seg", ".idx"

func segmentName(dir string, base uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, segExt))
}

func parseSegmentName(name string) (uint64, bool) {
	if !strings.HasSuffix(name, segExt) {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(name, segExt), 10, 64)
	return n, err == nil
}

func (s *segment) idxPath() string { return strings.TrimSuffix(s.path, segExt) + idxExt }

type idxEntry struct {
	seq       uint64
	off, ln   uint32
	published int64  // for stream offsets by timestamp and retention by age
	filter    uint32 // hash of the stream filter value, 0 for none
}

// add indexes a message record; seqs must increase. It reports false for
// a seq that does not (only possible in a corrupt file).
func (s *segment) add(m msgMeta, keepMeta bool) bool {
	if len(s.idx) > 0 && m.seq <= s.maxSeq {
		return false
	}
	i := len(s.idx)
	s.idx = append(s.idx, idxEntry{seq: m.seq, off: m.off, ln: m.ln, published: m.published, filter: m.filter})
	if i/64 >= len(s.acked) {
		s.acked = append(s.acked, 0)
	}
	s.maxSeq = m.seq
	s.live++
	if keepMeta {
		s.meta = append(s.meta, m)
	}
	return true
}

// find returns the position of seq in idx if it is live, else -1.
func (s *segment) find(seq uint64) int {
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].seq >= seq })
	if i == len(s.idx) || s.idx[i].seq != seq || s.acked[i/64]&(1<<(i%64)) != 0 {
		return -1
	}
	return i
}

// has reports whether seq is a live (unacked) message of this segment.
func (s *segment) has(seq uint64) bool { return s.find(seq) >= 0 }

// ack marks seq consumed; it reports false if seq was not live here.
func (s *segment) ack(seq uint64) bool {
	i := s.find(seq)
	if i < 0 {
		return false
	}
	s.acked[i/64] |= 1 << (i % 64)
	s.live--
	return true
}

// dropFrom forgets the messages recorded at or past offset cut — those of
// a failed write, or everything after the last good fsync — acked or not.
// It returns the first seq forgotten; ok is false when none was.
func (s *segment) dropFrom(cut int64) (first, last uint64, ok bool) {
	i := sort.Search(len(s.idx), func(i int) bool { return int64(s.idx[i].off) >= cut })
	if k := sort.Search(len(s.meta), func(k int) bool { return int64(s.meta[k].off) >= cut }); k < len(s.meta) {
		s.meta = s.meta[:k]
	}
	if i == len(s.idx) {
		return 0, 0, false
	}
	first, last = s.idx[i].seq, s.idx[len(s.idx)-1].seq
	for j := i; j < len(s.idx); j++ {
		if s.acked[j/64]&(1<<(j%64)) == 0 {
			s.live--
		} else {
			s.acked[j/64] &^= 1 << (j % 64) // positions j.. are reused by new messages
		}
	}
	s.idx = s.idx[:i]
	s.acked = s.acked[:(i+63)/64]
	if i > 0 {
		s.maxSeq = s.idx[i-1].seq
	}
	return first, last, true
}

// Sidecar index: written when a segment is sealed so recovery reads it
// instead of the segment's bodies. Little-endian:
//
//	"TIDX" | version u32 = 1 | base u64 |
//	nmsg u32 | nmsg × (seq u64, off u32, len u32, published i64, ttl_ms i64, prio u8, size u32, filter u32) |
//	nack u32 | nack × seq u64 | ndel u32 | ndel × seq u64 | CRC-32C u32 of all before
const idxMagic = "TIDX"

// idxEntrySize is the bytes of one message in a sidecar index.
const idxEntrySize = 41

func (s *segment) encodeIndex() []byte {
	b := make([]byte, 0, 20+len(s.meta)*idxEntrySize+len(s.acks)*8+len(s.dels)*8+12)
	b = append(b, idxMagic...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, s.base)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.meta)))
	for _, m := range s.meta {
		b = binary.LittleEndian.AppendUint64(b, m.seq)
		b = binary.LittleEndian.AppendUint32(b, m.off)
		b = binary.LittleEndian.AppendUint32(b, m.ln)
		b = binary.LittleEndian.AppendUint64(b, uint64(m.published))
		b = binary.LittleEndian.AppendUint64(b, uint64(m.ttlMs))
		b = append(b, m.prio)
		b = binary.LittleEndian.AppendUint32(b, m.size)
		b = binary.LittleEndian.AppendUint32(b, m.filter)
	}
	for _, list := range [][]uint64{s.acks, s.dels} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(list)))
		for _, q := range list {
			b = binary.LittleEndian.AppendUint64(b, q)
		}
	}
	return binary.LittleEndian.AppendUint32(b, record.CRC(b))
}

var errBadIndex = errors.New("store: bad segment index")

// scanResult is what reading a segment (or its index) yields.
type scanResult struct {
	msgs []msgMeta
	acks []uint64
	dels []uint64
}

func decodeIndex(b []byte, base uint64) (scanResult, error) {
	var r scanResult
	if len(b) < 24 || string(b[:4]) != idxMagic || binary.LittleEndian.Uint32(b[4:]) != 1 {
		return r, errBadIndex
	}
	body := b[:len(b)-4]
	if record.CRC(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return r, errBadIndex
	}
	if binary.LittleEndian.Uint64(b[8:]) != base {
		return r, errBadIndex
	}
	p := body[16:]
	u32 := func() (uint32, bool) {
		if len(p) < 4 {
			return 0, false
		}
		v := binary.LittleEndian.Uint32(p)
		p = p[4:]
		return v, true
	}
	n, ok := u32()
	if !ok || uint64(n)*idxEntrySize > uint64(len(p)) {
		return r, errBadIndex
	}
	r.msgs = make([]msgMeta, n)
	for i := range r.msgs {
		m := &r.msgs[i]
		m.seq = binary.LittleEndian.Uint64(p)
		m.off = binary.LittleEndian.Uint32(p[8:])
		m.ln = binary.LittleEndian.Uint32(p[12:])
		m.published = int64(binary.LittleEndian.Uint64(p[16:]))
		m.ttlMs = int64(binary.LittleEndian.Uint64(p[24:]))
		m.prio = p[32]
		m.size = binary.LittleEndian.Uint32(p[33:])
		m.filter = binary.LittleEndian.Uint32(p[37:])
		p = p[idxEntrySize:]
	}
	for _, dst := range []*[]uint64{&r.acks, &r.dels} {
		n, ok := u32()
		if !ok || uint64(n)*8 > uint64(len(p)) {
			return r, errBadIndex
		}
		list := make([]uint64, n)
		for i := range list {
			list[i] = binary.LittleEndian.Uint64(p)
			p = p[8:]
		}
		*dst = list
	}
	if len(p) != 0 {
		return r, errBadIndex
	}
	return r, nil
}
