package forward

import (
	"bytes"
	"context"
	"reflect"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/message"
	"go.etcd.io/raft/v3/raftpb"
)

// Every decoder of the protocol is fuzzed: it must not panic, and what it
// accepts must encode back to bytes that decode to the same value.

var seedRef = queueRef{VHost: "/", Name: "q", ID: "id1"}

func seedRecord() []byte {
	return message.AppendMessage(nil, &message.Message{Exchange: "x", RoutingKey: "k", Body: []byte("hello"),
		Props: message.Properties{DeliveryMode: 2, Headers: map[string]any{"h": "v"}}})
}

func FuzzDecodePublish(f *testing.F) {
	b := appendPublishItem(nil, &seedRef, false, seedRecord())
	b = appendPublishItem(b, nil, true, []byte("x"))
	f.Add(b)
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := decodePublish(body)
		if err != nil {
			return
		}
		var out []byte
		for i, it := range items {
			r := it.ref
			out = appendPublishItem(out, &r, i > 0 && it.ref == items[i-1].ref, it.rec)
		}
		again, err := decodePublish(out)
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("round trip: %v %v %v", err, again, items)
		}
	})
}

func FuzzDecodePublishReply(f *testing.F) {
	f.Add([]byte{0, 1, 2}, 3)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		out, err := decodePublishReply(body, n)
		if err == nil && (len(out) != n || !bytes.Equal(out, body)) {
			t.Fatal("accepted a reply of the wrong length")
		}
	})
}

func FuzzDecodeConsume(f *testing.F) {
	c := consumeReq{Epoch: 7, Consumer: 3, Ref: seedRef, NoAck: true, Priority: -2, Prefetch: 10,
		Stream: encodeStreamOptions(broker.StreamOptions{Offset: int64(5), Filters: []string{"a"}, Name: "n"})}
	f.Add(c.append(nil))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := decodeConsume(body)
		if err != nil {
			return
		}
		again, err := decodeConsume(c.append(nil))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %v %+v %+v", err, again, c)
		}
		_, _ = decodeStreamOptions(c.Stream)
	})
}

func FuzzDecodeStatus(f *testing.F) {
	f.Add(appendStatus(nil, 0, ""))
	f.Add(appendStatus(nil, 3, "refused"))
	f.Fuzz(func(t *testing.T, body []byte) {
		kind, text, err := decodeStatus(body)
		if err != nil {
			return
		}
		k2, t2, err := decodeStatus(appendStatus(nil, kind, text))
		if err != nil || k2 != kind || t2 != text {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add(appendControl(nil, 9, []ctlOp{{Op: opAck, Consumer: 1, IDs: []uint64{3, 1, 2}}, {Op: opCredit, Consumer: 1, Released: 5},
		{Op: opCancel, Consumer: 2, Seen: 7}, {Op: opRequeue, Consumer: 0, IDs: []uint64{1 << 63}}, {Op: opLost, Consumer: 3, IDs: []uint64{4, 5}}, {Op: opAbort, Consumer: 4}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		epoch, ops, err := decodeControl(body)
		if err != nil {
			return
		}
		e2, again, err := decodeControl(appendControl(nil, epoch, ops))
		if err != nil || e2 != epoch || !reflect.DeepEqual(normOps(again), normOps(ops)) {
			t.Fatalf("round trip: %v %+v %+v", err, again, ops)
		}
	})
}

// normOps makes empty and nil id lists alike for comparison.
func normOps(ops []ctlOp) []ctlOp {
	out := make([]ctlOp, len(ops))
	for i, o := range ops {
		if len(o.IDs) == 0 {
			o.IDs = nil
		}
		out[i] = o
	}
	return out
}

func FuzzDecodeGet(f *testing.F) {
	g := getReq{Epoch: 1, Ref: seedRef, NoAck: true}
	f.Add(g.append(nil))
	g = getReq{Epoch: 1, Ref: seedRef, ID: 9}
	f.Add(g.append(nil))
	f.Fuzz(func(t *testing.T, body []byte) {
		g, err := decodeGet(body)
		if err != nil {
			return
		}
		again, err := decodeGet(g.append(nil))
		if err != nil || again != g {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeGetReply(f *testing.F) {
	d := delivery{ID: 4, Redelivered: true, Remaining: 2, Rec: seedRecord()}
	f.Add(d.appendBody(appendBool(nil, true)))
	f.Add(appendBool(nil, false))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, found, err := decodeGetReply(body)
		if err != nil || !found {
			return
		}
		again, found, err := decodeGetReply(d.appendBody(appendBool(nil, true)))
		if err != nil || !found || !reflect.DeepEqual(again, d) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeDeliver(f *testing.F) {
	b := appendUvarint(nil, 5)
	b = appendDelivery(b, &delivery{Consumer: 1, ID: 1, Rec: seedRecord()})
	b = appendDelivery(b, &delivery{Consumer: 2, ID: 9, Redelivered: true, Remaining: 3, Rec: []byte{}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, body []byte) {
		epoch, ds, err := decodeDeliver(body)
		if err != nil {
			return
		}
		out := appendUvarint(nil, epoch)
		for i := range ds {
			out = appendDelivery(out, &ds[i])
		}
		e2, again, err := decodeDeliver(out)
		if err != nil || e2 != epoch || !reflect.DeepEqual(again, ds) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeCancelled(f *testing.F) {
	f.Add(appendCancelled(nil, 3, 4))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, c, err := decodeCancelled(body)
		if err != nil {
			return
		}
		e2, c2, err := decodeCancelled(appendCancelled(nil, e, c))
		if err != nil || e2 != e || c2 != c {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeRef(f *testing.F) {
	f.Add(appendRef(nil, seedRef))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRef(body)
		if err != nil {
			return
		}
		again, err := decodeRef(appendRef(nil, r))
		if err != nil || again != r {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeRefs(f *testing.F) {
	f.Add(appendRefs(nil, []queueRef{seedRef, {VHost: "v"}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		refs, err := decodeRefs(body)
		if err != nil {
			return
		}
		again, err := decodeRefs(appendRefs(nil, refs))
		if err != nil || !reflect.DeepEqual(again, refs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeUvarints(f *testing.F) {
	f.Add(appendUvarint(appendUvarint(appendUvarint(nil, 1), 300), 0), 3)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 16 {
			return
		}
		vs, err := decodeUvarints(body, n)
		if err != nil {
			return
		}
		var out []byte
		for _, v := range vs {
			out = appendUvarint(out, v)
		}
		again, err := decodeUvarints(out, n)
		if err != nil || !reflect.DeepEqual(again, vs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeKeepalive(f *testing.F) {
	f.Add(appendKeepalive(nil, 8, []kaItem{{Consumer: 1, Released: 2}, {Consumer: 3, Released: 0}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, items, err := decodeKeepalive(body)
		if err != nil {
			return
		}
		e2, again, err := decodeKeepalive(appendKeepalive(nil, e, items))
		if err != nil || e2 != e || !reflect.DeepEqual(again, items) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeKeepaliveReply(f *testing.F) {
	f.Add(appendKeepaliveReply(nil, []kaReply{{Consumer: 1, Known: true, LastNotified: 7}, {Consumer: 2}}))
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, err := decodeKeepaliveReply(body)
		if err != nil {
			return
		}
		again, err := decodeKeepaliveReply(appendKeepaliveReply(nil, rs))
		if err != nil || !reflect.DeepEqual(again, rs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// nullTransport answers nothing: the handlers' own sends go nowhere.
type nullTransport struct{}

func (nullTransport) SendRaft(transport.NodeID, transport.Group, []*raftpb.Message) {}
func (nullTransport) Request(context.Context, transport.NodeID, uint8, []byte) ([]byte, error) {
	return nil, transport.ErrUnreachable
}
func (nullTransport) Notify(transport.NodeID, uint8, []byte) error { return nil }
func (nullTransport) SetPeer(transport.NodeID, string)             {}
func (nullTransport) RemovePeer(transport.NodeID)                  {}
func (nullTransport) Close() error                                 { return nil }

// FuzzHandle feeds any body of any kind to a node's handlers, which serve
// a broker holding a queue with messages: nothing may panic, and the
// queue keeps its messages accounted (ready + unacked never grows).
func FuzzHandle(f *testing.F) {
	c := consumeReq{Epoch: 1, Consumer: 1, Ref: queueRef{VHost: "/", Name: "q"}, Prefetch: 2}
	f.Add(KindConsume, c.append(nil))
	f.Add(KindPublish, appendPublishItem(nil, &queueRef{VHost: "/", Name: "q"}, false, seedRecord()))
	f.Add(KindControl, appendControl(nil, 1, []ctlOp{{Op: opAck, Consumer: 1, IDs: []uint64{1}}}))
	g := getReq{Epoch: 1, Ref: queueRef{VHost: "/", Name: "q"}, ID: 3}
	f.Add(KindGet, g.append(nil))
	f.Add(KindKeepalive, appendKeepalive(nil, 1, []kaItem{{Consumer: 1, Released: 1}}))
	f.Add(KindDeliver, appendDelivery(appendUvarint(nil, 1), &delivery{Consumer: 1, ID: 1, Rec: seedRecord()}))
	f.Add(KindCancelled, appendCancelled(nil, 1, 1))
	f.Add(KindPurge, appendRef(nil, queueRef{VHost: "/", Name: "q"}))
	f.Add(KindCounts, appendRefs(nil, []queueRef{{VHost: "/", Name: "q"}}))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		fw := New(Config{Self: 1, Transport: nullTransport{}, Logger: quietLogger()})
		defer fw.Close()
		b := broker.New(broker.Config{Storage: memstore.New(), Logger: quietLogger(), Replication: broker.Replication{Node: 1, Forward: fw}})
		fw.SetBroker(b)
		v := b.VHost("/")
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: "q"}, false, 1); err != nil {
			t.Fatal(err)
		}
		var s broker.RouteScratch
		for i := range 3 {
			if _, err := v.Publish(&s, &message.Message{RoutingKey: "q", Body: []byte{byte(i)}}, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
		q, _ := v.Queue("q", 1)
		if Owns(kind) {
			_, _ = fw.HandleRequest(context.Background(), 2, kind, body)
			fw.HandleNotify(2, kind, body)
		}
		r, u, _ := q.Counts()
		if r+u > 3+len(body) {
			t.Fatalf("ready %d unacked %d after %d bytes", r, u, len(body))
		}
	})
}

// okTransport answers a consume with OK and everything else with an
// empty reply: a client-side consumer can be opened without a peer.
type okTransport struct{ nullTransport }

func (okTransport) Request(_ context.Context, _ transport.NodeID, kind uint8, _ []byte) ([]byte, error) {
	if kind == KindConsume {
		return appendStatus(nil, 0, ""), nil
	}
	if kind == KindKeepalive {
		return appendKeepaliveReply(nil, nil), nil
	}
	return nil, nil
}

// FuzzClientNotify feeds any deliver, cancelled or keepalive-reply body to
// the client side of a node with one forwarded consumer (of node 2's
// queue): nothing may panic, and the consumer never gets more messages
// than the notify carried.
func FuzzClientNotify(f *testing.F) {
	b := appendUvarint(nil, 0) // the epoch is patched in below
	b = appendDelivery(b, &delivery{Consumer: 1, ID: 1, Rec: seedRecord()})
	b = appendDelivery(b, &delivery{Consumer: 1, ID: 3, Redelivered: true, Rec: seedRecord()})
	f.Add(KindDeliver, b, false)
	f.Add(KindCancelled, appendCancelled(nil, 0, 1), false)
	f.Add(KindDeliver, appendKeepaliveReply(nil, []kaReply{{Consumer: 1, Known: true, LastNotified: 5}}), true)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte, asKeepaliveReply bool) {
		fw := New(Config{Self: 1, Transport: okTransport{}, Logger: quietLogger()})
		defer fw.Close()
		br := broker.New(broker.Config{Storage: memstore.New(), Logger: quietLogger(), Replication: broker.Replication{Node: 1, Forward: fw}})
		fw.SetBroker(br)
		err := br.ApplyReplicated(broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "qid", Node: 2,
			QueueConfig: broker.QueueConfig{Name: "q", Durable: true}}})
		if err != nil {
			t.Fatal(err)
		}
		q, err := br.VHost("/").Queue("q", 0)
		if err != nil || !q.Remote() {
			t.Fatalf("remote queue: %v", err)
		}
		c := newConsumer(0, false)
		if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
			t.Fatal(err)
		}
		// Put this run's epoch in place of the seeds' 0.
		r := newReader(body)
		if e := r.Uvarint(); r.Err() == nil && e == 0 && kind != KindKeepalive {
			body = append(appendUvarint(nil, fw.epoch), r.Rest()...)
		}
		if asKeepaliveReply {
			// As the keepalive's reply handler would see it.
			if rs, err := decodeKeepaliveReply(body); err == nil {
				fw.link(2).applyKeepaliveReply(rs)
			}
			return
		}
		fw.HandleNotify(2, kind, body)
		if g, _, _ := c.snapshot(); len(g) > len(body)/2 {
			t.Fatalf("%d deliveries from %d bytes", len(g), len(body))
		}
	})
}
