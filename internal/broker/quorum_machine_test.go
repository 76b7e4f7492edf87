package broker

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/message"
)

// qgen turns bytes into a sequence of quorum commands over a small space
// of nodes, consumer keys (two epochs per node) and message ids, so that
// settlements, returns and node events hit messages that exist.
type qgen struct {
	b  []byte
	ts int64
}

func (g *qgen) next() byte {
	if len(g.b) == 0 {
		return 0
	}
	v := g.b[0]
	g.b = g.b[1:]
	return v
}

func (g *qgen) key() uint64 { v := g.next(); return uint64(1+v%2)<<32 | uint64(v/2%3) }

func (g *qgen) refs() []qref {
	n := int(g.next() % 4)
	refs := make([]qref, n)
	for i := range refs {
		refs[i] = qref{key: g.key(), id: uint64(g.next() % 12), acquired: uint32(g.next() % 4)}
	}
	return refs
}

// cmd returns the next command's entry, nil at the end.
func (g *qgen) cmd() []byte {
	if len(g.b) == 0 {
		return nil
	}
	op := g.next()
	g.ts += int64(g.next()) * int64(20*time.Millisecond)
	c := qcmd{kind: qcmdKind(op%17 + 1), node: uint64(1 + g.next()%3), ts: g.ts}
	switch c.kind {
	case qcEnqueue:
		m := &message.Message{RoutingKey: "q", Body: bytes.Repeat([]byte{'x'}, int(g.next()%5)), Published: g.ts}
		if v := g.next(); v%3 == 0 {
			m.Props.Expiration = fmt.Sprint(int(v) * 10)
		}
		c.record = message.AppendMessage(nil, m)
	case qcCheckout:
		c.key, c.prefetch, c.priority, c.flags = g.key(), uint32(g.next()%4), int32(g.next()%3), g.next()%5/4
	case qcCancel:
		c.key = g.key()
		for range g.next() % 3 {
			c.ids = append(c.ids, uint64(g.next()%12))
		}
	case qcCancelAt:
		c.key = g.key()
		for range g.next() % 3 {
			c.keep = append(c.keep, qref{id: uint64(g.next() % 12), acquired: uint32(g.next() % 4)})
		}
	case qcSettle, qcReturn, qcDiscard, qcSettleAt, qcDiscardAt:
		c.refs = g.refs()
	case qcReturnAt:
		c.flags, c.refs = g.next()%2, g.refs()
	case qcGet:
		c.key, c.flags = g.key(), g.next()%2
	case qcNodeDown, qcNodeUp:
		c.target = uint64(1 + g.next()%3)
	case qcNodeRestarted:
		c.target, c.epoch = uint64(1+g.next()%3), uint32(1+g.next()%2)
	}
	return c.encode(nil)
}

// recBody is the body of a message record the machine holds ("" and a
// note when it does not decode).
func recBody(rec []byte) []byte {
	m, err := message.DecodeMessage(rec)
	if err != nil {
		return []byte("undecodable: " + err.Error())
	}
	return m.Body
}

// describe prints a command's result without pointers.
func describe(r any) string {
	if g, ok := r.(*qgot); ok {
		return fmt.Sprintf("got %d %q %v %d", g.id, recBody(g.rec), g.redelivered, g.remaining)
	}
	return fmt.Sprint(r)
}

func qgenConfig(b byte) quorumConfig {
	cfg := quorumConfig{maxLength: -1, maxBytes: -1, overflow: DropHead, deliveryLimit: -1, hasDLX: b&1 != 0, singleActive: b&2 != 0}
	if b&4 != 0 {
		cfg.ttl, cfg.hasTTL = time.Duration(b%7)*100*time.Millisecond, true
	}
	if b&8 != 0 {
		cfg.maxLength = int64(b % 5)
	}
	if b&16 != 0 {
		cfg.overflow = RejectPublish
	}
	if b&32 != 0 {
		cfg.deliveryLimit = int64(b % 3)
	}
	if b&64 != 0 {
		cfg.maxBytes = int64(b % 9)
	}
	return cfg
}

func snap(t testing.TB, m *quorumMachine) []byte {
	t.Helper()
	s, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkInvariants verifies what every state must satisfy.
func checkInvariants(t testing.TB, m *quorumMachine) {
	t.Helper()
	var msgBytes int64
	m.msgs.each(func(q *qmsg) { msgBytes += q.size })
	m.msgs.check(t)
	if msgBytes != m.msgBytes {
		t.Fatalf("msgBytes %d, messages hold %d", m.msgBytes, msgBytes)
	}
	if s, n := m.stateSize(), len(m.appendSnapshot(nil)); s < uint64(n) {
		t.Fatalf("stateSize %d, below the snapshot's %d bytes", s, n)
	}
	ready, unacked := 0, 0
	var readyBytes int64
	var last *qmsg
	for i := 0; i < m.ready.len(); i++ {
		q := m.ready.at(i)
		if q.owner != nil || m.msgs.get(q.id) != q || (last != nil && last.id >= q.id) {
			t.Fatalf("ready list broken at %d (id %d)", i, q.id)
		}
		last = q
		ready++
		readyBytes += q.size
	}
	for _, c := range m.consumers {
		n := 0
		for q := c.first; q != nil; q = q.next {
			if q.owner != c || m.msgs.get(q.id) != q || q.acquired == 0 || (q.next != nil && q.next.prev != q) {
				t.Fatalf("consumer %d/%x holds %d wrongly (acquired %d)", c.node, c.key, q.id, q.acquired)
			}
			unacked++
			n++
		}
		if n != c.nout || (c.first != nil && c.first.prev != nil) {
			t.Fatalf("consumer %d/%x lists %d messages, counts %d", c.node, c.key, n, c.nout)
		}
	}
	if ready+unacked != m.msgs.len() || unacked != m.unacked || readyBytes != m.readyBytes {
		t.Fatalf("counts: %d ready + %d out != %d messages; unacked %d; bytes %d vs %d", ready, unacked, m.msgs.len(), m.unacked, readyBytes, m.readyBytes)
	}
	// What the last Apply assigned went to consumers with room for it,
	// and with a single active consumer, to that one alone.
	for _, d := range m.deliveries {
		if q := m.msgs.get(d.id); q != nil && q.owner != nil && q.owner.node == d.node && q.owner.key == d.key && q.acquired != d.acquired {
			t.Fatalf("delivery %d names acquired %d, the message has %d", d.id, d.acquired, q.acquired)
		}
		c := m.consumer(d.node, d.key)
		if c == nil || c.status != qsUp || (c.prefetch > 0 && c.nout > int(c.prefetch)) {
			t.Fatalf("delivery %d to %d/%x beyond its credit", d.id, d.node, d.key)
		}
		if m.cfg.singleActive && c != m.active {
			t.Fatalf("delivery %d to %d/%x, not the single active consumer", d.id, d.node, d.key)
		}
	}
}

// runQuorumMachines applies the commands data encodes to two replicas
// from the start and to a third restored from the first's snapshot after
// the first cut commands, then checks that all three end byte-equal, that
// a snapshot round-trips, and the invariants after every step.
func runQuorumMachines(t testing.TB, data []byte) {
	if len(data) < 2 {
		return
	}
	cfg := qgenConfig(data[0])
	cut := int(data[1] % 32)
	g := &qgen{b: data[2:], ts: 1_000_000_000}
	a, b := newQuorumMachine(cfg), newQuorumMachine(cfg)
	var c *quorumMachine
	for i := 1; i <= 400; i++ {
		e := g.cmd()
		if e == nil {
			break
		}
		if i == cut+1 {
			c = newQuorumMachine(cfg)
			if err := c.Restore(snap(t, a)); err != nil {
				t.Fatalf("restore: %v", err)
			}
		}
		ra, rb := a.Apply(uint64(i), e), b.Apply(uint64(i), e)
		if describe(ra) != describe(rb) {
			t.Fatalf("entry %d: results %v and %v", i, ra, rb)
		}
		checkInvariants(t, a)
		a.deliveries, a.dead, b.deliveries, b.dead = nil, nil, nil, nil
		if c != nil {
			c.Apply(uint64(i), e)
			c.deliveries, c.dead = nil, nil
		}
	}
	sa := snap(t, a)
	if !bytes.Equal(sa, snap(t, b)) {
		t.Fatal("replicas applying the same entries differ")
	}
	if c != nil && !bytes.Equal(sa, snap(t, c)) {
		t.Fatal("a replica restored from a snapshot differs after the same entries")
	}
	r := newQuorumMachine(cfg)
	if err := r.Restore(sa); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sa, snap(t, r)) {
		t.Fatal("a snapshot does not round-trip")
	}
	checkInvariants(t, r)
}

// Random command sequences from a fixed seed, so the property runs in
// every test run (the fuzz target explores further).
func TestQuorumMachineDeterministic(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		data := make([]byte, 50+rng.IntN(1500))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		runQuorumMachines(t, data)
	}
}

func FuzzQuorumMachine(f *testing.F) {
	f.Add([]byte{0, 3, 0, 1, 1, 1, 0, 1, 1, 2, 0, 1, 1, 1, 1, 2})
	f.Add([]byte{35, 10, 1, 5, 1, 9, 0, 2, 1, 2, 3, 1, 3, 4, 2, 1, 6, 2, 9, 4, 3, 2, 10, 1, 3})
	f.Add(bytes.Repeat([]byte{7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 0}, 20))
	f.Fuzz(func(t *testing.T, data []byte) { runQuorumMachines(t, data) })
}

func TestQuorumMachineScenario(t *testing.T) {
	t.Parallel()
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, overflow: DropHead, deliveryLimit: 1, hasDLX: true})
	idx := uint64(0)
	apply := func(c qcmd) any {
		idx++
		c.ts = max(c.ts, int64(idx))
		return m.Apply(idx, c.encode(nil))
	}
	enq := func(body string) {
		if err := apply(qcmd{kind: qcEnqueue, node: 1, record: message.AppendMessage(nil, &message.Message{Body: []byte(body), Published: int64(idx + 1)})}); err != nil {
			t.Fatal(err)
		}
	}
	k1, k2 := uint64(7)<<32|1, uint64(9)<<32|1
	enq("a")
	enq("b")
	apply(qcmd{kind: qcCheckout, node: 2, key: k1, prefetch: 1})
	if len(m.deliveries) != 1 || m.deliveries[0].id != 0 || m.deliveries[0].node != 2 {
		t.Fatalf("deliveries %+v", m.deliveries)
	}
	m.deliveries = nil
	// A settlement from another node, or naming another consumer, is stale.
	apply(qcmd{kind: qcSettle, node: 3, refs: []qref{{key: k1, id: 0}}})
	apply(qcmd{kind: qcSettle, node: 2, refs: []qref{{key: k1 + 1, id: 0}}})
	if m.unacked != 1 {
		t.Fatalf("a stale settlement settled: unacked %d", m.unacked)
	}
	// Node 2 restarts: its consumer of the earlier epoch gives a back.
	apply(qcmd{kind: qcNodeRestarted, node: 2, target: 2, epoch: 9})
	if m.unacked != 0 || m.ready.len() != 2 || !m.ready.front().redelivered() || len(m.consumers) != 0 {
		t.Fatalf("after restart: unacked %d ready %d consumers %d", m.unacked, m.ready.len(), len(m.consumers))
	}
	apply(qcmd{kind: qcCheckout, node: 2, key: k2, prefetch: 2})
	if len(m.deliveries) != 2 {
		t.Fatalf("deliveries %+v", m.deliveries)
	}
	m.deliveries = nil
	apply(qcmd{kind: qcReturn, node: 2, refs: []qref{{key: k2, id: 0}, {key: k2, id: 1}}})
	apply(qcmd{kind: qcReturn, node: 2, refs: []qref{{key: k2, id: 0}, {key: k2, id: 1}}})
	// Two returns each: past the limit of 1, both are dead-lettered.
	if m.msgs.len() != 0 || len(m.dead) != 2 || m.dead[0].reason != "delivery_limit" {
		t.Fatalf("msgs %d dead %+v", m.msgs.len(), m.dead)
	}
	ids := slices.Collect(func(yield func(uint64) bool) {
		for _, d := range m.deliveries {
			if !yield(d.id) {
				return
			}
		}
	})
	if !slices.Equal(ids, []uint64{0, 1}) {
		t.Fatalf("redeliveries %v", ids)
	}
}

// The machine's cost per message on one replica: enqueue (decoding the
// record), assignment to a consumer, settlement.
func BenchmarkQuorumMachine(b *testing.B) {
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	key := uint64(1)<<32 | 1
	idx := uint64(1)
	m.Apply(idx, (&qcmd{kind: qcCheckout, node: 1, key: key, prefetch: 100}).encode(nil))
	msg := &message.Message{Exchange: "", RoutingKey: "q", Body: make([]byte, 1024), Props: message.Properties{DeliveryMode: 2}}
	enq := (&qcmd{kind: qcEnqueue, node: 1, record: message.AppendMessage(nil, msg)}).encode(nil)
	var refs []qref
	b.ReportAllocs()
	b.SetBytes(1024)
	for b.Loop() {
		idx++
		m.Apply(idx, enq)
		for _, d := range m.deliveries {
			refs = append(refs, qref{key: d.key, id: d.id})
		}
		m.deliveries = m.deliveries[:0]
		if len(refs) == 50 {
			idx++
			m.Apply(idx, (&qcmd{kind: qcSettle, node: 1, refs: refs}).encode(nil))
			refs = refs[:0]
		}
	}
}
