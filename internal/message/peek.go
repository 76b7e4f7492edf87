package message

import "fmt"

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
// checks the record's framing (the lengths of its sections) and the
// properties up to the expiration, not the rest: a record PeekRecord
// accepts may still fail DecodeMessage (a malformed header table), while
// every record DecodeMessage accepts PeekRecord accepts too, with the
// same published time, body length and expiration.
func PeekRecord(b []byte) (RecordInfo, error) {
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
	p := reader{buf: props}
	flags := p.short()
	if flags&flagContinued != 0 {
		p.fail("continued property flags are not supported")
	}
	if flags&flagExpiration != 0 {
		if flags&flagContentType != 0 {
			p.take(int(p.octet()))
		}
		if flags&flagContentEncoding != 0 {
			p.take(int(p.octet()))
		}
		if flags&flagHeaders != 0 {
			p.longstrBytes()
		}
		if flags&flagDeliveryMode != 0 {
			p.octet()
		}
		if flags&flagPriority != 0 {
			p.octet()
		}
		if flags&flagCorrelationID != 0 {
			p.take(int(p.octet()))
		}
		if flags&flagReplyTo != 0 {
			p.take(int(p.octet()))
		}
		info.Expiration = p.take(int(p.octet()))
	}
	if p.err != nil {
		return RecordInfo{}, fmt.Errorf("%w: properties: %v", ErrCorrupt, p.err)
	}
	return info, nil
}
