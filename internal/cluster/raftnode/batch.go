package raftnode

import (
	"encoding/binary"
	"errors"
)

// A batch entry carries several proposals of one node in one Raft entry:
// the proposals queued on a group between two turns of its goroutine
// (a publisher's window of messages, a consumer's acks) share the
// per-entry costs — Raft's bookkeeping, the protobuf encoding of the
// entry in the WAL and in every append message, the decode on every
// follower — instead of paying them once each. Each item is a whole
// single-proposal entry (header and payload), so the proposer still
// completes each caller by its own sequence, and the state machine sees
// every item as an entry of its own, in order, all with the batch's
// Raft index.
//
// Layout: batchVersion, uvarint count, then count times (uvarint length,
// item). A node that does not know batchVersion (an older release) skips
// the entry: every node of a cluster must run a release that reads it.
const batchVersion = 0x02

// Bounds of one batch: proposals beyond them start the next entry. The
// bytes stay well under MaxSizePerMsg, so one append message still
// carries several entries, and the count bounds the apply loop one entry
// holds the group for.
const (
	maxBatchBytes = 256 << 10
	maxBatchItems = 1024
)

var errBadBatch = errors.New("raftnode: malformed batch entry")

// appendBatch appends a batch entry of items (each a single-proposal
// entry's data) to dst.
func appendBatch(dst []byte, items [][]byte) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, it := range items {
		dst = binary.AppendUvarint(dst, uint64(len(it)))
		dst = append(dst, it...)
	}
	return dst
}

// appendProposals is a batch entry of run, proposals of node me: each
// item is written as its header and payload, straight into the entry
// (building each item first cost a copy of every proposal). dst should
// have room for proposalsSize(run) bytes.
func appendProposals(dst []byte, me NodeID, run []*pending) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, uint64(len(run)))
	var hdr [maxHeaderLen]byte
	for _, p := range run {
		h := appendHeader(hdr[:0], me, p.seq, nil)
		dst = binary.AppendUvarint(dst, uint64(len(h)+len(p.data)))
		dst = append(append(dst, h...), p.data...)
	}
	return dst
}

// proposalsSize bounds the length appendProposals makes of run.
func proposalsSize(run []*pending) int {
	n := 1 + binary.MaxVarintLen64
	for _, p := range run {
		n += binary.MaxVarintLen64 + maxHeaderLen + len(p.data)
	}
	return n
}

// batchSize is the length appendBatch makes of items.
func batchSize(items [][]byte) int {
	n := 1 + binary.MaxVarintLen64
	for _, it := range items {
		n += binary.MaxVarintLen64 + len(it)
	}
	return n
}

// splitBatch calls f with each item of a batch entry, in order (each a
// sub-slice of data). It checks the whole batch before the first call, so
// a malformed batch applies nothing on every replica alike.
func splitBatch(data []byte, f func(item []byte)) error {
	items, err := batchItems(data)
	if err != nil {
		return err
	}
	for _, it := range items {
		f(it)
	}
	return nil
}

func batchItems(data []byte) ([][]byte, error) {
	if len(data) == 0 || data[0] != batchVersion {
		return nil, errBadBatch
	}
	rest := data[1:]
	count, n := binary.Uvarint(rest)
	if n <= 0 || count == 0 || count > uint64(len(rest)) {
		return nil, errBadBatch
	}
	rest = rest[n:]
	items := make([][]byte, 0, count)
	for range count {
		l, n := binary.Uvarint(rest)
		if n <= 0 || l > uint64(len(rest)-n) {
			return nil, errBadBatch
		}
		items = append(items, rest[n:n+int(l)])
		rest = rest[n+int(l):]
	}
	if len(rest) != 0 {
		return nil, errBadBatch
	}
	return items, nil
}
