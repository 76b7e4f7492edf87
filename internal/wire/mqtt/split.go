package mqtt

import "fmt"

// Split finds the first packet in b, the bytes read so far from a stream:
// its first byte and body, and its total size. size 0 means b does not
// yet hold a whole packet; need is then the packet's total size when its
// header is complete (so the caller can make room), else 0. A packet
// larger than maxSize (fixed header included; 0: the protocol's maximum)
// fails with PacketTooLarge before its body arrives, as Reader does.
func Split(b []byte, maxSize int) (first byte, body []byte, size, need int, err error) {
	if len(b) < 2 {
		return 0, nil, 0, 0, nil
	}
	var length uint32
	hdr := 1
	for i := 0; ; i++ {
		if hdr >= len(b) {
			return 0, nil, 0, 0, nil // the length is not all here yet
		}
		c := b[hdr]
		hdr++
		length |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, 0, 0, malformed("remaining length longer than 4 bytes")
		}
	}
	total := hdr + int(length)
	if maxSize > 0 && total > maxSize {
		return 0, nil, 0, 0, &Error{Code: PacketTooLarge, Msg: fmt.Sprintf("packet of %d bytes, limit %d", length, maxSize)}
	}
	if len(b) < total {
		return 0, nil, 0, total, nil
	}
	return b[0], b[hdr:total], total, total, nil
}
