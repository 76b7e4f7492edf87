package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Record types.
const (
	recMessage   byte = 1 // seq uint64 | message record (message.AppendMessage)
	recAck       byte = 2 // n × seq uint64
	recDelivered byte = 3 // n × seq uint64
	recKeyed     byte = 4 // seq uint64 | key length uint32 | key | message record (a RecordLog's)
)

// recordHeader is length uint32 (type + payload) | CRC-32C uint32 (of type +
// payload), little-endian.
const recordHeader = 8

// maxRecord bounds a record's length so a corrupt length cannot make
// recovery allocate gigabytes.
const maxRecord = 512 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks the end of the valid records: a torn or corrupt tail.
var errTorn = errors.New("store: torn or corrupt record")

// appendRecord frames payload (type byte included as its first byte).
func appendRecord(buf []byte, typ byte, payload ...[]byte) []byte {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ)
	for _, p := range payload {
		buf = append(buf, p...)
	}
	sealRecord(buf, start)
	return buf
}

// sealRecord fills in the length and CRC of the record begun at start,
// whose type byte and payload follow the header.
func sealRecord(buf []byte, start int) {
	body := buf[start+recordHeader:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crcOf(body))
}

// parseRecord reads the record at the start of b. It returns the type, the
// payload (aliasing b) and the record's total length, or errTorn when the
// bytes do not hold a complete, intact record.
func parseRecord(b []byte) (typ byte, payload []byte, n int, err error) {
	if len(b) < recordHeader+1 {
		return 0, nil, 0, errTorn
	}
	length := binary.LittleEndian.Uint32(b)
	if length == 0 || length > maxRecord || uint64(len(b)-recordHeader) < uint64(length) {
		return 0, nil, 0, errTorn
	}
	body := b[recordHeader : recordHeader+int(length)]
	if crcOf(body) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, errTorn
	}
	return body[0], body[1:], recordHeader + int(length), nil
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

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

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
