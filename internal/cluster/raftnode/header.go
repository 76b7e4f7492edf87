package raftnode

import (
	"encoding/binary"
	"errors"
)

// Every proposal's entry data starts with a header naming the node that
// proposed it and the proposal's sequence on that node, so the proposer —
// which may be a follower whose MsgProp the leader appended — recognises
// its own entry when it applies it and completes the waiting caller.
// Layout: headerVersion, uvarint node, uvarint sequence, then the payload.
const headerVersion = 0x01

// maxHeaderLen bounds a header's length.
const maxHeaderLen = 1 + 2*binary.MaxVarintLen64

// errBadHeader is returned by decodeHeader for data that does not start
// with a well-formed header.
var errBadHeader = errors.New("raftnode: entry without a valid proposal header")

// appendHeader appends the header for (node, seq) and then payload to dst.
func appendHeader(dst []byte, node NodeID, seq uint64, payload []byte) []byte {
	dst = append(dst, headerVersion)
	dst = binary.AppendUvarint(dst, node)
	dst = binary.AppendUvarint(dst, seq)
	return append(dst, payload...)
}

// encodeHeader returns a new slice holding the header and payload.
func encodeHeader(node NodeID, seq uint64, payload []byte) []byte {
	return appendHeader(make([]byte, 0, maxHeaderLen+len(payload)), node, seq, payload)
}

// decodeHeader splits entry data into the proposer, its sequence and the
// payload (a sub-slice of data).
func decodeHeader(data []byte) (node NodeID, seq uint64, payload []byte, err error) {
	if len(data) == 0 || data[0] != headerVersion {
		return 0, 0, nil, errBadHeader
	}
	rest := data[1:]
	node, n := binary.Uvarint(rest)
	if n <= 0 {
		return 0, 0, nil, errBadHeader
	}
	rest = rest[n:]
	seq, n = binary.Uvarint(rest)
	if n <= 0 {
		return 0, 0, nil, errBadHeader
	}
	return node, seq, rest[n:], nil
}

// Snapshots this package writes wrap the state machine's bytes in one
// version byte, so an empty snapshot (the bootstrap snapshot every new
// group starts from, which holds only the configuration) is told apart
// from a state machine whose encoded state happens to be empty.
const snapVersion = 0x01

func wrapSnapshot(sm []byte) []byte {
	return append([]byte{snapVersion}, sm...)
}

// unwrapSnapshot returns the state machine's bytes; ok is false for a
// snapshot without state (the bootstrap snapshot).
func unwrapSnapshot(data []byte) (sm []byte, ok bool, err error) {
	if len(data) == 0 {
		return nil, false, nil
	}
	if data[0] != snapVersion {
		return nil, false, errors.New("raftnode: snapshot with unknown version byte")
	}
	return data[1:], true, nil
}
