package forward

// The messages of the protocol and their encodings (wire.go has the
// primitives). Each decoder is fuzzed (fuzz_test.go).

// queueRef names a queue on its owner: vhost, name and the metadata's id,
// so an operation meant for a deleted queue never reaches a later queue
// of the same name.
type queueRef struct{ VHost, Name, ID string }

func appendRef(b []byte, q queueRef) []byte {
	b = appendString(b, q.VHost)
	b = appendString(b, q.Name)
	return appendString(b, q.ID)
}

func (r *reader) ref() queueRef {
	return queueRef{VHost: r.Str(), Name: r.Str(), ID: r.Str()}
}

// A publish request is a run of items, each a flag (1: a queue reference
// follows; 0: the previous item's queue) and a stored message record
// (message.AppendMessage). Items are appended as publishes arrive, so the
// body has no count. The reply is one outcome byte per item.
const (
	outcomeOK       byte = 0 // enqueued, and durable if the queue logs it: confirm
	outcomeRejected byte = 1 // refused (reject-publish, storage failed): nack
	outcomeDropped  byte = 2 // no such queue on the owner any more: the message went nowhere
)

func appendPublishItem(b []byte, q *queueRef, same bool, rec []byte) []byte {
	if same {
		b = append(b, 0)
	} else {
		b = appendRef(append(b, 1), *q)
	}
	return appendBytes(b, rec)
}

type publishItem struct {
	ref queueRef
	rec []byte // aliases the body
}

func decodePublish(body []byte) ([]publishItem, error) {
	r := newReader(body)
	var items []publishItem
	var cur queueRef
	for first := true; r.Len() > 0 && r.Err() == nil; first = false {
		switch r.Byte() {
		case 0:
			if first {
				r.Fail("first publish names no queue")
			}
		case 1:
			cur = r.ref()
		default:
			r.Fail("bad queue flag")
		}
		rec := r.Bytes()
		if r.Err() == nil {
			items = append(items, publishItem{ref: cur, rec: rec})
		}
	}
	return items, r.End()
}

func decodePublishReply(body []byte, n int) ([]byte, error) {
	if len(body) != n {
		return nil, errMalformed
	}
	for _, o := range body {
		if o > outcomeDropped {
			return nil, errMalformed
		}
	}
	return body, nil
}

// consumeReq opens a consumer on the owner.
type consumeReq struct {
	Epoch     uint64
	Consumer  uint64
	Ref       queueRef
	NoAck     bool
	Exclusive bool
	Priority  int64
	Prefetch  uint64
	Stream    []byte // an AMQP field table of the stream options; empty for other queues
}

func (c *consumeReq) append(b []byte) []byte {
	b = appendUvarint(b, c.Epoch)
	b = appendUvarint(b, c.Consumer)
	b = appendRef(b, c.Ref)
	b = appendBool(b, c.NoAck)
	b = appendBool(b, c.Exclusive)
	b = binaryAppendVarint(b, c.Priority)
	b = appendUvarint(b, c.Prefetch)
	return appendBytes(b, c.Stream)
}

func decodeConsume(body []byte) (consumeReq, error) {
	r := newReader(body)
	c := consumeReq{Epoch: r.Uvarint(), Consumer: r.Uvarint(), Ref: r.ref(), NoAck: r.Bool(), Exclusive: r.Bool(),
		Priority: r.Varint(), Prefetch: r.Uvarint(), Stream: r.Bytes()}
	return c, r.End()
}

// A reply that may carry a broker error: status 0, or 1 with the error's
// kind and text, so the client's node answers its client with the code
// the owner's broker chose.
func appendStatus(b []byte, kind uint64, text string) []byte {
	if kind == 0 {
		return append(b, 0)
	}
	b = appendUvarint(append(b, 1), kind)
	return appendString(b, text)
}

func decodeStatus(body []byte) (kind uint64, text string, err error) {
	r := newReader(body)
	if r.Bool() {
		kind, text = r.Uvarint(), r.Str()
		if r.Err() == nil && kind == 0 {
			r.Fail("error of kind 0")
		}
	}
	return kind, text, r.End()
}

// Control operations: settles of a consumer's deliveries by id, its
// credit (deliveries the client's node is done with, cumulative), its
// cancellation. A control request carries one client node's operations
// in the order they happened; every one is idempotent, so a request that
// failed is sent again.
const (
	opAck     byte = 1
	opRequeue byte = 2
	opReject  byte = 3
	opCredit  byte = 4
	opCancel  byte = 5
	// opLost gives back deliveries the transport lost (a gap in the ids,
	// or ids a keepalive reply names that never arrived). A queue requeues
	// them, as opRequeue; a stream, whose requeue puts nothing back and
	// whose reader has moved past them, has the proxy send them again.
	opLost byte = 6
	// opAbort ends a consumer whose consume the client's node reported
	// failed (refused, or its reply never came): no deliveries reached its
	// consumer, so everything the proxy holds goes back to the queue.
	opAbort byte = 7
)

type ctlOp struct {
	Op       byte
	Consumer uint64   // 0: the node's basic.get deliveries
	IDs      []uint64 // ack, requeue, reject, lost
	Released uint64   // credit
	// Seen (cancel) is the last delivery id the client's node received:
	// what the owner pushed beyond it never reached the consumer and
	// goes back to the queue.
	Seen uint64
}

func appendControl(b []byte, epoch uint64, ops []ctlOp) []byte {
	b = appendUvarint(b, epoch)
	b = appendUvarint(b, uint64(len(ops)))
	for i := range ops {
		o := &ops[i]
		b = append(b, o.Op)
		b = appendUvarint(b, o.Consumer)
		switch o.Op {
		case opAck, opRequeue, opReject, opLost:
			b = appendIDs(b, o.IDs)
		case opCredit:
			b = appendUvarint(b, o.Released)
		case opCancel:
			b = appendUvarint(b, o.Seen)
		}
	}
	return b
}

func decodeControl(body []byte) (epoch uint64, ops []ctlOp, err error) {
	r := newReader(body)
	epoch = r.Uvarint()
	n := r.Count(2)
	ops = make([]ctlOp, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		o := ctlOp{Op: r.Byte(), Consumer: r.Uvarint()}
		switch o.Op {
		case opAck, opRequeue, opReject, opLost:
			o.IDs = r.ids()
		case opCredit:
			o.Released = r.Uvarint()
		case opCancel:
			o.Seen = r.Uvarint()
		case opAbort:
		default:
			r.Fail("unknown control op")
		}
		ops = append(ops, o)
	}
	return epoch, ops, r.End()
}

// ids are a count, the first id and the signed differences after it.
func appendIDs(b []byte, ids []uint64) []byte {
	b = appendUvarint(b, uint64(len(ids)))
	var prev uint64
	for _, id := range ids {
		b = binaryAppendVarint(b, int64(id-prev))
		prev = id
	}
	return b
}

func (r *reader) ids() []uint64 {
	n := r.Count(1)
	ids := make([]uint64, 0, n)
	var prev uint64
	for i := 0; i < n && r.Err() == nil; i++ {
		prev += uint64(r.Varint())
		ids = append(ids, prev)
	}
	return ids
}

// getReq is basic.get; its reply is a flag and, when a message was
// found, its delivery. ID, the client node's choice (0 for no-ack), is
// the id the delivery is held under until settled: a client whose reply
// was lost still knows it and gives the message back.
type getReq struct {
	Epoch uint64
	Ref   queueRef
	NoAck bool
	ID    uint64
}

func (g *getReq) append(b []byte) []byte {
	b = appendUvarint(b, g.Epoch)
	b = appendRef(b, g.Ref)
	b = appendBool(b, g.NoAck)
	return appendUvarint(b, g.ID)
}

func decodeGet(body []byte) (getReq, error) {
	r := newReader(body)
	g := getReq{Epoch: r.Uvarint(), Ref: r.ref(), NoAck: r.Bool(), ID: r.Uvarint()}
	if r.Err() == nil && !g.NoAck && g.ID == 0 {
		r.Fail("get to ack without an id")
	}
	return g, r.End()
}

// delivery is one message pushed to (or got by) the client's node.
type delivery struct {
	Consumer    uint64
	ID          uint64
	Redelivered bool
	Remaining   uint64
	Rec         []byte // message.AppendMessage; aliases the body
}

func (d *delivery) appendBody(b []byte) []byte {
	b = appendUvarint(b, d.ID)
	b = appendBool(b, d.Redelivered)
	b = appendUvarint(b, d.Remaining)
	return appendBytes(b, d.Rec)
}

func (r *reader) deliveryBody(d *delivery) {
	d.ID, d.Redelivered, d.Remaining, d.Rec = r.Uvarint(), r.Bool(), r.Uvarint(), r.Bytes()
}

func decodeGetReply(body []byte) (d delivery, found bool, err error) {
	r := newReader(body)
	if found = r.Bool(); found {
		r.deliveryBody(&d)
	}
	return d, found, r.End()
}

// A deliver notify is the owner's session epoch (the client node's epoch
// it serves) and a run of deliveries, appended as they are pushed.
func appendDelivery(b []byte, d *delivery) []byte {
	return d.appendBody(appendUvarint(b, d.Consumer))
}

func decodeDeliver(body []byte) (epoch uint64, ds []delivery, err error) {
	r := newReader(body)
	epoch = r.Uvarint()
	for r.Len() > 0 && r.Err() == nil {
		d := delivery{Consumer: r.Uvarint()}
		r.deliveryBody(&d)
		if r.Err() == nil {
			ds = append(ds, d)
		}
	}
	return epoch, ds, r.End()
}

// A cancelled notify names one consumer of one epoch.
func appendCancelled(b []byte, epoch, consumer uint64) []byte {
	return appendUvarint(appendUvarint(b, epoch), consumer)
}

func decodeCancelled(body []byte) (epoch, consumer uint64, err error) {
	r := newReader(body)
	epoch, consumer = r.Uvarint(), r.Uvarint()
	return epoch, consumer, r.End()
}

// A counts request names queues (a count, then refs); its reply is
// three uvarints per queue: ready, unacked, consumers.
func appendRefs(b []byte, refs []queueRef) []byte {
	b = appendUvarint(b, uint64(len(refs)))
	for _, r := range refs {
		b = appendRef(b, r)
	}
	return b
}

func decodeRefs(body []byte) ([]queueRef, error) {
	r := newReader(body)
	n := r.Count(3)
	refs := make([]queueRef, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		refs = append(refs, r.ref())
	}
	return refs, r.End()
}

// refOnly is the body of a purge request.
func decodeRef(body []byte) (queueRef, error) {
	r := newReader(body)
	q := r.ref()
	return q, r.End()
}

func decodeUvarints(body []byte, n int) ([]uint64, error) {
	r := newReader(body)
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = r.Uvarint()
	}
	return vs, r.End()
}

// keepalive: the client node's epoch and, per consumer it has on the
// owner, its credit; the reply says per consumer whether the owner still
// has it and the last delivery id it handed to the transport.
type kaItem struct {
	Consumer uint64
	Released uint64
}

type kaReply struct {
	Consumer     uint64
	Known        bool
	LastNotified uint64
}

func appendKeepalive(b []byte, epoch uint64, items []kaItem) []byte {
	b = appendUvarint(b, epoch)
	b = appendUvarint(b, uint64(len(items)))
	for _, it := range items {
		b = appendUvarint(appendUvarint(b, it.Consumer), it.Released)
	}
	return b
}

func decodeKeepalive(body []byte) (epoch uint64, items []kaItem, err error) {
	r := newReader(body)
	epoch = r.Uvarint()
	n := r.Count(2)
	items = make([]kaItem, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		items = append(items, kaItem{Consumer: r.Uvarint(), Released: r.Uvarint()})
	}
	return epoch, items, r.End()
}

func appendKeepaliveReply(b []byte, rs []kaReply) []byte {
	b = appendUvarint(b, uint64(len(rs)))
	for _, x := range rs {
		b = appendUvarint(b, x.Consumer)
		b = appendBool(b, x.Known)
		b = appendUvarint(b, x.LastNotified)
	}
	return b
}

func decodeKeepaliveReply(body []byte) ([]kaReply, error) {
	r := newReader(body)
	n := r.Count(3)
	rs := make([]kaReply, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		rs = append(rs, kaReply{Consumer: r.Uvarint(), Known: r.Bool(), LastNotified: r.Uvarint()})
	}
	return rs, r.End()
}
