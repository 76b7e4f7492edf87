package store

import (
	"encoding/binary"
	"errors"

	"github.com/tern-broker/tern/internal/record"
)

// Record types.
const (
	recMessage   byte = 1 // seq uint64 | message record (message.AppendMessage)
	recAck       byte = 2 // n × seq uint64
	recDelivered byte = 3 // n × seq uint64
	recKeyed     byte = 4 // seq uint64 | key length uint32 | key | message record (a RecordLog's)
)

// Records are framed by internal/record: length uint32 | CRC-32C uint32
// (both of type + payload) | type | payload, little-endian.
const recordHeader = record.HeaderLen

// maxRecord bounds a record's length so a corrupt length cannot make
// recovery allocate gigabytes.
const maxRecord = 512 << 20

// errTorn marks the end of the valid records: a torn or corrupt tail.
var errTorn = errors.New("store: torn or corrupt record")

var (
	appendRecord = record.Append // frames a type byte and payload
	sealRecord   = record.Seal   // seals a record begun in place
)

// parseRecord reads the record at the start of b. It returns the type, the
// payload (aliasing b) and the record's total length, or errTorn when the
// bytes do not hold a complete, intact record.
func parseRecord(b []byte) (typ byte, payload []byte, n int, err error) {
	typ, payload, n, ok := record.Parse(b, maxRecord)
	if !ok {
		return 0, nil, 0, errTorn
	}
	return typ, payload, n, nil
}

// seqs decodes an ack or delivered payload.
func seqs(payload []byte) ([]uint64, error) {
	if len(payload)%8 != 0 {
		return nil, errTorn
	}
	out := make([]uint64, len(payload)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(payload[8*i:])
	}
	return out, nil
}

// splitKey returns a keyed record's key and the message record after it;
// other records have no key.
func splitKey(typ byte, b []byte) (key string, rest []byte, err error) {
	if typ != recKeyed {
		return "", b, nil
	}
	if len(b) < 4 {
		return "", nil, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if uint64(len(b)-4) < uint64(n) {
		return "", nil, errTorn
	}
	return string(b[4 : 4+n]), b[4+n:], nil
}
