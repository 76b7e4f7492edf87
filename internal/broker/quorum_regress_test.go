package broker

import (
	"sync"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// Regression tests for the review of the quorum queue backend.

// hookTaker is a qtaker that runs onDeliver (once) inside its first
// TryDeliver: on the group's goroutine, during Apply.
type hookTaker struct {
	qtaker
	once      sync.Once
	onDeliver func()
}

func (h *hookTaker) TryDeliver(d Delivery) Verdict {
	v := h.qtaker.TryDeliver(d)
	if v != Refuse && h.onDeliver != nil {
		h.once.Do(h.onDeliver)
	}
	return v
}

// A cancel must not overtake a settlement of the same consumer: applied
// first, it would return (unmarked) a message the client already has, and
// another consumer would get it too. The settlement here is a no-ack
// delivery's, or an ack's, that found no leader and waits for its retry.
func TestQuorumCancelWaitsForTheConsumersSettlements(t *testing.T) {
	t.Parallel()
	for _, noAck := range []bool{true, false} {
		c := newQCluster(t, 2)
		qs := c.declare("q", nil)
		a := &hookTaker{}
		if noAck {
			// The leader goes away between the delivery and the
			// no-ack settle's proposal (queued on the outbox).
			a.onDeliver = func() { c.f.setLeader(0) }
		}
		if err := qs[0].Consume(a, ConsumeOptions{NoAck: noAck, Prefetch: 10, Priority: 10}); err != nil {
			t.Fatal(err)
		}
		b := &qtaker{}
		if err := qs[1].Consume(b, ConsumeOptions{Prefetch: 10}); err != nil {
			t.Fatal(err)
		}
		c.publish(2, "q", "m", message.Properties{}, nil, 0)
		c.settle()
		if got := a.bodies(); got != "m" {
			t.Fatalf("no-ack %v: a got %q", noAck, got)
		}
		if !noAck {
			c.f.setLeader(0)
			c.settle()
			qs[0].Ack(a.deliveries()...) // fails: retried in quorumRetry
			c.settle()
		}
		c.f.setLeader(1)
		c.settle()
		qs[0].Cancel(a) // the channel closes: the settle has not applied yet
		c.settle()
		if got := b.bodies(); got != "" {
			t.Fatalf("no-ack %v: the other consumer got %q, which the cancelled one had", noAck, got)
		}
		c.clk.Advance(quorumRetry)
		c.settle()
		if got := b.bodies(); got != "" {
			t.Fatalf("no-ack %v: after the retry the other consumer got %q", noAck, got)
		}
		wantCounts(t, qs, 0, 0, 1)
		c.sameState(qs)
	}
}

// A failed delivery (basic.reject with requeue) whose proposal reported
// an error although it committed is retried; the retry names the delivery
// it settles, so it does not count the message twice nor take back the
// message's next delivery (here, with x-delivery-limit 1, a second count
// would dead-letter it).
func TestQuorumRetriedReturnCountsOnce(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	dead := c.deadLetterQueues()
	qs := c.declare("q", map[string]any{"x-delivery-limit": int32(1), "x-dead-letter-exchange": "dlx"})
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	c.f.lie.Store(1)
	qs[1].RequeueFailed(cons.deliveries())
	c.settle()
	if got := cons.bodies(); got != "m,m*" {
		t.Fatalf("deliveries %q", got)
	}
	c.clk.Advance(quorumRetry) // the retry of the return that did apply
	c.settle()
	if r, _, _ := dead[0].Counts(); r != 0 {
		t.Fatal("one failed delivery, retried, dead-lettered the message (x-delivery-limit 1)")
	}
	if got := cons.bodies(); got != "m,m*" {
		t.Fatalf("the retried return took back the next delivery: deliveries %q", got)
	}
	wantCounts(t, qs, 0, 1, 1)
	if n := cons.deliveries()[1].Msg.Props.Headers[HeaderDeliveryCount]; n != int64(1) {
		t.Fatalf("x-delivery-count %v", n)
	}
	// Stale settlements of the first delivery change nothing either.
	qs[1].Ack(cons.deliveries()[0])
	qs[1].Reject(cons.deliveries()[:1])
	c.settle()
	wantCounts(t, qs, 0, 1, 1)
	qs[1].Ack(cons.deliveries()[1])
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	c.sameState(qs)
}

// In the machine: every settlement kind of the -at family applies once,
// to the delivery it names.
func TestQuorumMachineSettlementsApplyOnce(t *testing.T) {
	t.Parallel()
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: 1, hasDLX: true})
	key := uint64(7)<<32 | 1
	apply := func(c qcmd) {
		if c.kind == qcEnqueue {
			c.record = message.AppendMessage(nil, &message.Message{RoutingKey: "q", Body: []byte("x"), Published: c.ts})
		}
		m.Apply(0, c.encode(nil))
	}
	apply(qcmd{kind: qcCheckout, node: 1, key: key, prefetch: 1})
	apply(qcmd{kind: qcEnqueue, node: 1})
	if len(m.deliveries) != 1 || m.deliveries[0].acquired != 1 {
		t.Fatalf("deliveries %+v", m.deliveries)
	}
	m.deliveries = nil
	ret := qcmd{kind: qcReturnAt, node: 1, flags: qfFailed, refs: []qref{{key: key, id: 0, acquired: 1}}}
	apply(ret)
	apply(ret)
	if len(m.dead) != 0 || m.msgs[0] == nil || m.msgs[0].count != 1 || m.msgs[0].owner == nil || m.msgs[0].acquired != 2 {
		t.Fatalf("a return applied twice: dead %d, msg %+v", len(m.dead), m.msgs[0])
	}
	for _, k := range []qcmdKind{qcSettleAt, qcDiscardAt} {
		apply(qcmd{kind: k, node: 1, refs: []qref{{key: key, id: 0, acquired: 1}}})
		if m.msgs[0] == nil || m.msgs[0].owner == nil {
			t.Fatalf("a stale %d settled the next delivery", k)
		}
	}
	// A cancel keeping the first delivery does not keep the second.
	apply(qcmd{kind: qcCancelAt, node: 1, key: key, keep: []qref{{id: 0, acquired: 1}}})
	if m.msgs[0].owner != nil || m.ready.len() != 1 || m.msgs[0].count != 1 {
		t.Fatalf("after the cancel: msg %+v", m.msgs[0])
	}
}
