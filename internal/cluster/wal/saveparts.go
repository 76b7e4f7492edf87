package wal

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	frame "github.com/tern-broker/tern/internal/record"
)

// A save's entries are the bulk of what the log writes (a quorum queue's
// messages), and encoding them into the record's buffer copied every byte
// once more on every replica (protowire.AppendBytes, 5% of the three
// nodes' CPU in clusterbench). So a save whose entries carry splitDataFrom
// bytes of data or more is queued in parts: the record's framing and the
// entries' protobuf up to each large entry's data in the pooled buffer,
// each large data written from the entry's own memory (the entries are
// immutable once saved: the group's memory holds the same slices). The
// bytes on disk are the same as encodeRecord's (TestSavePartsEncodeAsRecord)
// and the CRC runs over the parts; on the operating system's disk the
// writer hands all of a batch's parts to one writev (writev.go).

// splitDataFrom is the entry data size from which a save's entry is written
// from its own memory rather than copied into the record.
const splitDataFrom = 2 << 10

// splitSave reports whether r (a save) has an entry worth writing from its
// own memory.
func splitSave(r *record) bool {
	for _, e := range r.ents {
		if len(e.GetData()) >= splitDataFrom {
			return true
		}
	}
	return false
}

// entryPrefix appends an entry's protobuf encoding up to (and including the
// tag and length of) its data: raftpb.Entry's own encoding, fields in
// number order (Type 1, Term 2, Index 3, Data 4), as proto.Marshal writes
// it for an entry without unknown fields.
func entryPrefix(b []byte, e *raftpb.Entry) []byte {
	if e.Type != nil {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(*e.Type)))
	}
	if e.Term != nil {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, *e.Term)
	}
	if e.Index != nil {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, *e.Index)
	}
	if e.Data != nil {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(e.Data)))
	}
	return b
}

// plainEntry: an entry entryPrefix and its data encode whole (no unknown
// fields, which proto.Marshal would write after the data).
func plainEntry(e *raftpb.Entry) bool { return len(e.ProtoReflect().GetUnknown()) == 0 }

// encodeSaveParts encodes the save r for the writer queue as encodeQueued
// does — the same bytes — into buf (recordRoom bytes, then the record up
// to the first large entry's data) and parts (that data, the bytes up to
// the next large data, which live in buf's memory too, and so on).
func encodeSaveParts(buf []byte, r *record) (rec []byte, parts [][]byte, err error) {
	var room [recordRoom]byte
	buf, start := beginRecord(append(buf[:0], room[:]...), r.typ)
	buf = binary.LittleEndian.AppendUint64(buf, r.group)
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
			return nil, nil, err
		}
	}
	if r.snap != nil {
		if buf, err = appendMsg(buf, r.snap); err != nil {
			return nil, nil, err
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.ents)))
	// Offsets into buf where a large entry's data goes: buf may grow while
	// it is written, so it is cut into parts only at the end.
	var cuts []int
	var datas [][]byte
	for _, e := range r.ents {
		if len(e.GetData()) < splitDataFrom || !plainEntry(e) {
			n := proto.Size(e) // cached for the MarshalAppend
			buf = binary.AppendUvarint(buf, uint64(n))
			if buf, err = cachedSize.MarshalAppend(buf, e); err != nil {
				return nil, nil, err
			}
			continue
		}
		pre := len(entryPrefix(nil, e))
		buf = binary.AppendUvarint(buf, uint64(pre+len(e.Data)))
		buf = entryPrefix(buf, e)
		cuts = append(cuts, len(buf))
		datas = append(datas, e.Data)
	}
	body := len(buf) - start - recordHeader
	for _, d := range datas {
		body += len(d)
	}
	limit := maxRecord
	if r.snap != nil {
		limit = maxSnapRecord
	}
	if body > limit {
		return nil, nil, fmt.Errorf("wal: record of %d bytes exceeds the limit of %d", body, limit)
	}
	rec = buf[:cuts[0]]
	crc := frame.CRC(rec[start+recordHeader:])
	for i, d := range datas {
		end := len(buf)
		if i+1 < len(cuts) {
			end = cuts[i+1]
		}
		mid := buf[cuts[i]:end:end]
		crc = frame.CRCUpdate(frame.CRCUpdate(crc, d), mid)
		parts = append(parts, d)
		if len(mid) > 0 {
			parts = append(parts, mid)
		}
	}
	binary.LittleEndian.PutUint32(buf[start:], uint32(body))
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return rec, parts, nil
}

// dataBytes is the data the entries of ents carry.
func dataBytes(ents []*raftpb.Entry) int64 {
	var n int64
	for _, e := range ents {
		n += int64(len(e.GetData()))
	}
	return n
}
