package bench

import (
	"encoding/binary"
	"errors"
)

// Every message body starts with a 24-byte header; the rest is padding up
// to the configured size:
//
//	magic u32 "TRNB" | producer u32 | seq u64 | intended send time i64 (UnixNano)
const headerSize = 24

var bodyMagic = [4]byte{'T', 'R', 'N', 'B'}

var errNotBench = errors.New("bench: not a bench message")

func writeHeader(b []byte, producer uint32, seq uint64, sentAt int64) {
	copy(b, bodyMagic[:])
	binary.BigEndian.PutUint32(b[4:], producer)
	binary.BigEndian.PutUint64(b[8:], seq)
	binary.BigEndian.PutUint64(b[16:], uint64(sentAt))
}

func readHeader(b []byte) (producer uint32, seq uint64, sentAt int64, err error) {
	if len(b) < headerSize || [4]byte(b[:4]) != bodyMagic {
		return 0, 0, 0, errNotBench
	}
	return binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:]), int64(binary.BigEndian.Uint64(b[16:])), nil
}
