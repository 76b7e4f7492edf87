package record

import (
	"encoding/binary"
	"hash/crc32"
)

// HeaderLen is the size of a record's header: length uint32 | CRC-32C
// uint32, both of the type byte and payload that follow.
const HeaderLen = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC is the checksum records carry: CRC-32C (Castagnoli).
func CRC(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// CRCUpdate is the CRC of the bytes crc was the CRC of followed by b: a
// record's CRC computed over its parts.
func CRCUpdate(crc uint32, b []byte) uint32 { return crc32.Update(crc, castagnoli, b) }

// Begin starts a record of type typ at the end of buf and returns buf and
// where the record starts; append the payload, then Seal.
func Begin(buf []byte, typ byte) ([]byte, int) {
	start := len(buf)
	return append(buf, 0, 0, 0, 0, 0, 0, 0, 0, typ), start
}

// Seal fills in the length and CRC of the record begun at start, whose
// type byte and payload are the rest of buf.
func Seal(buf []byte, start int) {
	body := buf[start+HeaderLen:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], CRC(body))
}

// Append frames a record of type typ whose payload is the concatenation of
// payload, at the end of buf.
func Append(buf []byte, typ byte, payload ...[]byte) []byte {
	buf, start := Begin(buf, typ)
	for _, p := range payload {
		buf = append(buf, p...)
	}
	Seal(buf, start)
	return buf
}

// Parse reads the record at the start of b: its type, its payload (aliasing
// b) and its total length. ok is false when b does not start with a
// complete, intact record whose type and payload take at most max bytes
// (the bound keeps a corrupt length from promising gigabytes): a zero
// length, a record running past the end of b, or a checksum mismatch.
func Parse(b []byte, max uint32) (typ byte, payload []byte, n int, ok bool) {
	if len(b) < HeaderLen+1 {
		return 0, nil, 0, false
	}
	length := binary.LittleEndian.Uint32(b)
	if length == 0 || length > max || uint64(len(b)-HeaderLen) < uint64(length) {
		return 0, nil, 0, false
	}
	body := b[HeaderLen : HeaderLen+int(length)]
	if CRC(body) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, false
	}
	return body[0], body[1:], HeaderLen + int(length), true
}
