package message

import (
	"encoding/binary"
	"fmt"
)

// RecordInfo is what PeekRecord reads of a stored message without decoding
// it: enough for a queue to account, limit and expire the message while
// it holds only the record.
type RecordInfo struct {
	Published int64 // UnixNano
	BodyLen   int   // the message's Size
	// Expiration is the expiration property (a per-message TTL in
	// milliseconds, as text), aliasing the record; nil when absent.
	Expiration []byte
}

// PeekRecord reads the published time, the body length and the expiration
// property of a record that AppendMessage wrote, allocating nothing. It
// accepts exactly the records DecodeMessage accepts (it walks the whole
// record as DecodeMessage does — properties, header table, extension —
// without building anything), with the same published time, body length
// and expiration. A quorum queue's replicas enqueue a record after
// PeekRecord alone and decode it only where it is delivered: a record the
// decoder refuses must be refused at enqueue, on every replica alike, as
// versions that decoded every record there did (review10 Q2), not queued
// and then dropped where delivered.
func PeekRecord(b []byte) (RecordInfo, error) { return peekRecord(b, true) }

// PeekRecordFraming is PeekRecord checking only the record's framing (the
// lengths of its sections) and the properties up to the expiration: for a
// record a queue already holds (a quorum queue's snapshot), which was
// accepted when it was enqueued, perhaps by a version that checked no
// more, and must be restored as it was.
func PeekRecordFraming(b []byte) (RecordInfo, error) { return peekRecord(b, false) }

func peekRecord(b []byte, whole bool) (RecordInfo, error) {
	r := reader{buf: b}
	var info RecordInfo
	info.Published = int64(r.longlong())
	r.take(int(r.octet())) // exchange
	r.take(int(r.octet())) // routing key
	props := r.longstrBytes()
	body := r.longstrBytes()
	if r.err != nil {
		return RecordInfo{}, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	info.BodyLen = len(body)
	exp, err := peekProperties(props, whole)
	if err != nil {
		return RecordInfo{}, fmt.Errorf("%w: properties: %v", ErrCorrupt, err)
	}
	info.Expiration = exp
	if ext := r.remaining(); whole && len(ext) != 0 {
		if err := checkExtension(ext); err != nil {
			return RecordInfo{}, err
		}
	}
	return info, nil
}

// peekProperties reads AMQP basic properties up to the expiration and
// returns it (nil when absent); with whole it walks them all as
// DecodeProperties reads them (the header table too), refusing what it
// refuses.
func peekProperties(b []byte, whole bool) ([]byte, error) {
	p := reader{buf: b}
	flags := p.short()
	if flags&flagContinued != 0 {
		p.fail("continued property flags are not supported")
	}
	if !whole && flags&flagExpiration == 0 {
		return nil, p.err
	}
	str := func(flag uint16) []byte {
		if flags&flag != 0 {
			return p.take(int(p.octet()))
		}
		return nil
	}
	str(flagContentType)
	str(flagContentEncoding)
	if flags&flagHeaders != 0 {
		raw := p.longstrBytes()
		if whole && p.err == nil {
			if err := checkTable(raw, 0); err != nil {
				return nil, err
			}
		}
	}
	if flags&flagDeliveryMode != 0 {
		p.octet()
	}
	if flags&flagPriority != 0 {
		p.octet()
	}
	str(flagCorrelationID)
	str(flagReplyTo)
	exp := str(flagExpiration)
	if whole {
		str(flagMessageID)
		if flags&flagTimestamp != 0 {
			p.longlong()
		}
		str(flagType)
		str(flagUserID)
		str(flagAppID)
		str(flagClusterID)
	}
	if p.err != nil {
		return nil, p.err
	}
	return exp, nil
}

// checkTable refuses what decodeTable refuses, building nothing.
func checkTable(raw []byte, depth int) error {
	if depth > maxTableDepth {
		return (&reader{}).failed("field table nested deeper than %d", maxTableDepth)
	}
	r := reader{buf: raw}
	for r.off < len(r.buf) && r.err == nil {
		r.take(int(r.octet())) // key
		r.skipFieldValue(depth)
	}
	return r.err
}

// skipFieldValue reads past one field value, refusing what fieldValue
// refuses.
func (r *reader) skipFieldValue(depth int) {
	kind := r.octet()
	if r.err != nil {
		return
	}
	switch kind {
	case 't', 'b', 'B':
		r.take(1)
	case 's', 'u':
		r.take(2)
	case 'I', 'i', 'f':
		r.take(4)
	case 'l', 'd', 'T':
		r.take(8)
	case 'D':
		r.take(5)
	case 'S', 'x':
		r.longstrBytes()
	case 'A':
		raw := r.longstrBytes()
		if r.err != nil {
			return
		}
		if depth >= maxTableDepth {
			r.fail("field array nested deeper than %d", maxTableDepth)
			return
		}
		sub := reader{buf: raw}
		for sub.off < len(sub.buf) && sub.err == nil {
			sub.skipFieldValue(depth + 1)
		}
		if sub.err != nil {
			r.err = sub.err
		}
	case 'F':
		raw := r.longstrBytes()
		if r.err != nil {
			return
		}
		if err := checkTable(raw, depth+1); err != nil {
			r.err = err
		}
	case 'V':
	default:
		r.fail("unknown field type %q", kind)
	}
}

// checkExtension refuses what decodeExtension refuses, building nothing.
func checkExtension(b []byte) error {
	corrupt := func(what string) error { return fmt.Errorf("%w: extension: %s", ErrCorrupt, what) }
	if len(b) < 6 || b[0] != extVersion {
		return corrupt("unknown version or short")
	}
	flags := b[1]
	n := int(binary.BigEndian.Uint16(b[4:]))
	b = b[6:]
	if len(b) < n {
		return corrupt("client id")
	}
	b = b[n:]
	if flags&flagOrdered != 0 {
		if len(b) < 4 {
			return corrupt("header count")
		}
		count := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(count) > uint64(len(b)) {
			return corrupt("header count")
		}
		for range count {
			if len(b) < 2 {
				return corrupt("header key")
			}
			kn := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+kn+5 {
				return corrupt("header")
			}
			kind := b[2+kn]
			vn := binary.BigEndian.Uint32(b[3+kn:])
			b = b[7+kn:]
			if uint64(vn) > uint64(len(b)) {
				return corrupt("header value")
			}
			raw := b[:vn]
			b = b[vn:]
			switch kind {
			case 'S':
			case 'F':
				r := reader{buf: raw}
				for r.off < len(r.buf) && r.err == nil {
					r.take(int(r.octet())) // key
					r.skipFieldValue(0)
				}
				if r.err != nil {
					return corrupt(r.err.Error())
				}
			default:
				return corrupt("header value kind")
			}
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b))
	}
	return nil
}
