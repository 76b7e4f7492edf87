package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	frame "github.com/tern-broker/tern/internal/record"
)

// Records are framed by internal/record, as internal/store frames its own:
// length uint32 (of type byte + payload) | CRC-32C uint32 (of type byte +
// payload) | type | payload, little-endian. The record types and their
// payloads are the WAL's own.
const recordHeader = frame.HeaderLen

// maxRecord bounds the length of a record that carries no snapshot (a
// save of entries, a compaction): Raft's messages bound them far lower,
// so a larger one is a bug, refused when encoded. A var: tests lower it.
var maxRecord = 256 << 20

// maxSnapRecord bounds a record that carries a snapshot (a snapshot, or a
// save or checkpoint holding one): the frame's uint32 length, less the
// record and batch headers, so the record alone still fits one batch's
// uint32 length. A snapshot is a quorum queue's whole state; bounding it
// by maxRecord, as before, meant a queue with more than 256 MiB waiting
// could never snapshot, its log never compacted and the WAL grew without
// bound (review7 F6). Recovery reads each segment whole (vfs.ReadFile)
// and parses records within it, so a corrupt length is bounded by the
// segment's bytes, never allocated. A var: tests lower it.
var maxSnapRecord = min(math.MaxUint32, math.MaxInt) - recordHeader - batchHeaderLen

// Record types. Every payload but recBatch's starts with the group id
// (uint64).
const (
	// recBatch opens every batch: uint32 length of the batch's records
	// that follow it. Recovery uses it to tell a torn final write from
	// damage in the middle of the log.
	recBatch byte = 1
	// recSave: flags u8 (flagHS, flagSnap) | [hard state] | [snapshot] |
	// entries. A snapshot replaces the log; entries then append with
	// Raft's truncation of a conflicting suffix.
	recSave byte = 2
	// recSnapshot: snapshot. CreateSnapshot: the snapshot changes, the
	// log does not.
	recSnapshot byte = 3
	// recCompact: index u64 | term u64. Entries up to index are gone.
	recCompact byte = 4
	// recCheckpoint: flags | [hard state] | [snapshot] | base index u64 |
	// base term u64 | entries. The group's whole live state, written
	// forward so older segments can be deleted; it replaces everything
	// recorded of the group before it.
	recCheckpoint byte = 5
	// recRemove: the group is deleted.
	recRemove byte = 6
)

const (
	flagHS   byte = 1
	flagSnap byte = 2
)

var crcOf = frame.CRC

// errBadRecord marks bytes that are not a complete, intact record.
var errBadRecord = errors.New("wal: torn or corrupt record")

// beginRecord starts a record of type typ at the end of buf; sealRecord
// fills in its length and CRC once the payload is appended.
var (
	beginRecord = frame.Begin
	sealRecord  = frame.Seal
)

// parseRecord reads the record at the start of b: its type, payload
// (aliasing b) and total length, or errBadRecord.
func parseRecord(b []byte) (typ byte, payload []byte, n int, err error) {
	// Any length up to maxSnapRecord: a record lies within b (the rest of
	// a segment read whole), and Parse checks its length against b, so a
	// corrupt length allocates nothing. Record types are checked when
	// decoded; a snapshot record may exceed maxRecord.
	typ, payload, n, ok := frame.Parse(b, uint32(maxSnapRecord))
	if !ok {
		return 0, nil, 0, errBadRecord
	}
	return typ, payload, n, nil
}

// maxIndex bounds the Raft indexes a record may hold.
const maxIndex = 1 << 62

// batchHeaderLen is the size of a batch header record.
const batchHeaderLen = recordHeader + 1 + 4

// putBatchHeader writes a batch header for n bytes of records into the
// first batchHeaderLen bytes of buf.
func putBatchHeader(buf []byte, n int) {
	buf[recordHeader] = recBatch
	binary.LittleEndian.PutUint32(buf[recordHeader+1:], uint32(n))
	sealRecord(buf[:batchHeaderLen], 0)
}

// record is a decoded record (other than a batch header).
type record struct {
	typ         byte
	group       uint64
	hs          *raftpb.HardState
	snap        *raftpb.Snapshot
	ents        []*raftpb.Entry
	index, term uint64 // recCompact; the base of a recCheckpoint
}

// cachedSize marshals with the size the caller has just computed: a
// record is sized once, then written, without growing its buffer (each
// growth of a megabyte record copies it again).
var cachedSize = proto.MarshalOptions{UseCachedSize: true}

func appendMsg(buf []byte, m proto.Message) ([]byte, error) {
	n := proto.Size(m)
	buf = slices.Grow(buf, binary.MaxVarintLen64+n)
	buf = binary.AppendUvarint(buf, uint64(n))
	return cachedSize.MarshalAppend(buf, m)
}

func appendEntries(buf []byte, ents []*raftpb.Entry) ([]byte, error) {
	sizes := make([]int, len(ents))
	total := binary.MaxVarintLen64
	for i, e := range ents {
		sizes[i] = proto.Size(e)
		total += binary.MaxVarintLen64 + sizes[i]
	}
	buf = slices.Grow(buf, total)
	buf = binary.AppendUvarint(buf, uint64(len(ents)))
	var err error
	for i, e := range ents {
		buf = binary.AppendUvarint(buf, uint64(sizes[i]))
		if buf, err = cachedSize.MarshalAppend(buf, e); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// recordRoom is the space a queued record keeps in front of it: the
// writer puts the batch header there when the record starts a batch, and
// writes the record from its own buffer (batch.go), so the record is not
// copied into a batch buffer first — a copy of every byte the WAL writes,
// snapshots included.
const recordRoom = batchHeaderLen

// encodeQueued encodes r for the writer queue: recordRoom bytes, then the
// framed record, in buf's memory (nil: a new buffer).
func encodeQueued(buf []byte, r *record) ([]byte, error) {
	var room [recordRoom]byte
	return encodeRecord(append(buf[:0], room[:]...), r)
}

// splitSnapshotFrom is the snapshot data size from which a snapshot
// record is queued in parts (encodeSnapshotParts).
const splitSnapshotFrom = 64 << 10

// encodeSnapshotParts encodes the snapshot record of group for the writer
// queue as encodeQueued does — the same bytes on disk — but in three
// parts: head (recordRoom, the frame header, the group and the protobuf
// up to the data), the snapshot's data itself, not copied, and tail (the
// metadata). The CRC runs over the three. Copying the data into the
// record cost an allocation of the whole state, zeroed (page faults and
// all), and a copy, for every snapshot of a quorum queue with a backlog:
// a fifth of its nodes' CPU in clusterbench. The protobuf is
// raftpb.Snapshot's own encoding (proto2: data, field 1, then metadata,
// field 2), written by hand; TestSnapshotPartsEncodeAsProto holds it to
// proto.Marshal's bytes.
func encodeSnapshotParts(buf []byte, group uint64, snap *raftpb.Snapshot) (head, data, tail []byte, err error) {
	md, err := proto.Marshal(snap.GetMetadata())
	if err != nil {
		return nil, nil, nil, err
	}
	data = snap.GetData()
	var tag [binary.MaxVarintLen64]byte
	tail = append(append(tail, 0x12), binary.AppendUvarint(tag[:0], uint64(len(md)))...)
	tail = append(tail, md...)
	msg := 1 + len(binary.AppendUvarint(tag[:0], uint64(len(data)))) + len(data) + len(tail)
	var room [recordRoom]byte
	head, start := beginRecord(append(buf[:0], room[:]...), recSnapshot)
	head = binary.LittleEndian.AppendUint64(head, group)
	head = binary.AppendUvarint(head, uint64(msg))
	head = append(head, 0x0a)
	head = binary.AppendUvarint(head, uint64(len(data)))
	body := len(head) - start - recordHeader + len(data) + len(tail)
	if body > maxSnapRecord {
		return nil, nil, nil, fmt.Errorf("wal: snapshot record of %d bytes exceeds the limit of %d", body, maxSnapRecord)
	}
	crc := frame.CRC(head[start+recordHeader:])
	crc = frame.CRCUpdate(crc, data)
	crc = frame.CRCUpdate(crc, tail)
	binary.LittleEndian.PutUint32(head[start:], uint32(body))
	binary.LittleEndian.PutUint32(head[start+4:], crc)
	return head, data, tail, nil
}

// encodeRecord appends r, framed, to buf.
func encodeRecord(buf []byte, r *record) ([]byte, error) {
	buf, start := beginRecord(buf, r.typ)
	buf = binary.LittleEndian.AppendUint64(buf, r.group)
	var err error
	switch r.typ {
	case recSave, recCheckpoint:
		var flags byte
		if r.hs != nil {
			flags |= flagHS
		}
		if r.snap != nil {
			flags |= flagSnap
		}
		buf = append(buf, flags)
		if r.hs != nil {
			if buf, err = appendMsg(buf, r.hs); err != nil {
				return nil, err
			}
		}
		if r.snap != nil {
			if buf, err = appendMsg(buf, r.snap); err != nil {
				return nil, err
			}
		}
		if r.typ == recCheckpoint {
			buf = binary.LittleEndian.AppendUint64(buf, r.index)
			buf = binary.LittleEndian.AppendUint64(buf, r.term)
		}
		if buf, err = appendEntries(buf, r.ents); err != nil {
			return nil, err
		}
	case recSnapshot:
		if buf, err = appendMsg(buf, r.snap); err != nil {
			return nil, err
		}
	case recCompact:
		buf = binary.LittleEndian.AppendUint64(buf, r.index)
		buf = binary.LittleEndian.AppendUint64(buf, r.term)
	case recRemove:
	default:
		return nil, fmt.Errorf("wal: encoding unknown record type %d", r.typ)
	}
	limit := maxRecord
	if r.snap != nil {
		limit = maxSnapRecord
	}
	if n := len(buf) - start - recordHeader; n > limit {
		return nil, fmt.Errorf("wal: record of %d bytes exceeds the limit of %d", n, limit)
	}
	sealRecord(buf, start)
	return buf, nil
}

// errMalformed prefixes a record that frames well but does not decode.
var errMalformed = errors.New("wal: bad record")

// decoder reads a payload: internal/record's bounds-checked reader (the
// first error sticks) with the WAL's protobuf fields on top.
type decoder struct{ frame.Reader }

// msg reads a protobuf message prefixed by its uvarint length.
func (d *decoder) msg(m proto.Message) {
	b := d.Bytes()
	if d.Err() != nil {
		return
	}
	if err := proto.Unmarshal(b, m); err != nil {
		d.Fail(err.Error())
	}
}

// entries reads a count of entries (each takes at least its length byte)
// and the entries, which must be consecutive from a non-zero index.
func (d *decoder) entries() []*raftpb.Entry {
	n := d.Count(1)
	if d.Err() != nil {
		return nil
	}
	ents := make([]*raftpb.Entry, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		e := &raftpb.Entry{}
		d.msg(e)
		if d.Err() == nil && len(ents) > 0 && e.GetIndex() != ents[len(ents)-1].GetIndex()+1 {
			d.Fail("entries not consecutive")
		}
		if d.Err() == nil && e.GetIndex() == 0 {
			d.Fail("entry index 0")
		}
		ents = append(ents, e)
	}
	return ents
}

// decodeRecord decodes a record's payload (typ is not recBatch).
func decodeRecord(typ byte, payload []byte) (*record, error) {
	d := &decoder{frame.NewReader(payload, errMalformed)}
	r := &record{typ: typ, group: d.U64()}
	switch typ {
	case recSave, recCheckpoint:
		flags := d.Byte()
		if flags&^(flagHS|flagSnap) != 0 {
			d.Fail("unknown flags")
		}
		if flags&flagHS != 0 {
			r.hs = &raftpb.HardState{}
			d.msg(r.hs)
		}
		if flags&flagSnap != 0 {
			r.snap = &raftpb.Snapshot{}
			d.msg(r.snap)
		}
		if typ == recCheckpoint {
			r.index, r.term = d.U64(), d.U64()
		}
		r.ents = d.entries()
		if d.Err() == nil && typ == recCheckpoint && len(r.ents) > 0 && r.ents[0].GetIndex() != r.index+1 {
			d.Fail("checkpoint entries do not follow its base")
		}
	case recSnapshot:
		r.snap = &raftpb.Snapshot{}
		d.msg(r.snap)
	case recCompact:
		r.index, r.term = d.U64(), d.U64()
	case recRemove:
	default:
		d.Fail(fmt.Sprintf("unknown type %d", typ))
	}
	_ = d.End() // trailing bytes fail
	// No log gets near 2^62 entries; a larger index is damage, and
	// refusing it keeps index arithmetic from overflowing.
	big := r.index >= maxIndex || r.snap.GetMetadata().GetIndex() >= maxIndex
	if len(r.ents) > 0 && r.ents[len(r.ents)-1].GetIndex() >= maxIndex {
		big = true
	}
	if d.Err() == nil && big {
		d.Fail("index out of range")
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

// sizeEstimate approximates the encoded size of r without encoding it.
func (r *record) sizeEstimate() int64 {
	n := int64(64 + len(r.snap.GetData()))
	for _, e := range r.ents {
		n += int64(24 + len(e.GetData()))
	}
	return n
}
