package broker

import (
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// BenchmarkQuorumThreeReplicas is the broker's side of a quorum queue on
// three nodes, per message, under a fake Raft (no WAL, no network): a
// persistent 1 KiB publish on node 1, applied on every replica, delivered
// to a consumer on node 2 (prefetch 1,000) and acked in batches of 100,
// the ack applied on every replica. Its allocations per message are what
// a replica's Apply and the two nodes' delivery and settlement cost
// (docs/performance.md, the cluster section).
func BenchmarkQuorumThreeReplicas(b *testing.B) {
	c := newQCluster(b, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 1000}); err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("x", 1024)
	props := message.Properties{DeliveryMode: 2}
	ack := func() {
		c.settle()
		cons.mu.Lock()
		ds := cons.got
		cons.got = nil
		cons.mu.Unlock()
		qs[1].Ack(ds...)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c.publish(1, "q", body, props, nil, 0)
		if n++; n%100 == 0 {
			ack()
		}
	}
	ack()
	c.settle()
	if r, u, _ := qs[2].Counts(); r != 0 || u != 0 {
		b.Fatalf("node 3 left with %d ready, %d unacked", r, u)
	}
}

// BenchmarkQuorumMachineCycle is one replica's machine per message: an
// enqueue of a 1 KiB record, its checkout to a consumer with credit 2,000
// and its settlement (one entry per ack, as a consumer acking each
// message makes them), with 1,000 messages checked out at any time.
func BenchmarkQuorumMachineCycle(b *testing.B) {
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	const key = 1 << 32
	m.Apply(1, (&qcmd{kind: qcCheckout, node: 2, key: key, prefetch: 2000}).encode(nil))
	rec := message.AppendMessage(nil, &message.Message{RoutingKey: "q", Body: []byte(strings.Repeat("x", 1024)),
		Props: message.Properties{DeliveryMode: 2}})
	enq := (&qcmd{kind: qcEnqueue, node: 1, record: rec}).encode(nil)
	settle := func(id uint64) []byte {
		return (&qcmd{kind: qcSettleAt, node: 2, refs: []qref{{key: key, id: id, acquired: 1}}}).encode(nil)
	}
	var id uint64
	for range 1000 {
		m.Apply(1, enq)
	}
	m.deliveries = nil
	b.ReportAllocs()
	for b.Loop() {
		m.Apply(1, enq)
		m.Apply(1, settle(id))
		id++
		m.deliveries = m.deliveries[:0]
	}
}
