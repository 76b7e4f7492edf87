package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// A consumer that leaves while the queue has no leader: its cancel waits
// for a leader, and meanwhile the machine may still assign new messages to
// it up to its credit while another consumer takes the later ones. When
// the cancel commits, what the gone consumer held goes back in its
// original place and comes out marked redelivered (RabbitMQ marks what a
// cancelled consumer returns): as first deliveries they would arrive after
// later messages of the same publisher (chaos seeds 114, 122 and 137 failed
// `order` so).
func TestQuorumLateCancelReturnsMarkedRedelivered(t *testing.T) {
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	idx := uint64(0)
	apply := func(c qcmd) {
		idx++
		c.ts = int64(idx)
		if res := m.Apply(idx, c.encode(nil)); res != nil {
			t.Fatalf("entry %d: %v", idx, res)
		}
	}
	gone, next := uint64(1)<<32|1, uint64(2)<<32|1
	apply(qcmd{kind: qcCheckout, node: 2, key: gone, prefetch: 2})
	for i := range 4 {
		apply(qcmd{kind: qcEnqueue, node: 1, record: message.AppendMessage(nil, &message.Message{Body: []byte(fmt.Sprintf("m%d", i)), Published: 1})})
	}
	apply(qcmd{kind: qcCheckout, node: 3, key: next, prefetch: 10})
	apply(qcmd{kind: qcCancelAt, node: 2, key: gone}) // its node handed out nothing
	var got []string
	for _, d := range m.deliveries {
		if d.key != next {
			continue
		}
		s := string(recBody(d.rec))
		if d.redelivered {
			s += "*"
		}
		got = append(got, s)
	}
	if g := fmt.Sprint(got); g != "[m2 m3 m0* m1*]" {
		t.Fatalf("the next consumer got %s, want m0 and m1 after the cancel, marked redelivered", g)
	}
}

// The same in the backend: a cancel that failed for want of a leader goes
// out as soon as a leader is known, not at its retry timer, so it commits
// before publishes made after the election are assigned to the gone
// consumer, and the next consumer gets every message in order, unmarked.
func TestQuorumCancelGoesOutWhenALeaderIsKnown(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	a := &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 2}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	c.f.setLeader(0)
	c.settle()
	qs[1].Cancel(a) // no leader: the cancel waits for its retry
	c.settle()
	c.f.setLeader(1)
	c.settle()
	for i := range 4 {
		c.publish(2, "q", fmt.Sprintf("m%d", i), message.Properties{}, nil, 0)
	}
	c.settle()
	b := &qtaker{}
	if err := qs[1].Consume(b, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := a.bodies(); got != "" {
		t.Fatalf("the cancelled consumer got %q", got)
	}
	if got := b.bodies(); got != "m0,m1,m2,m3" {
		t.Fatalf("b got %q, want every message in order (the cancel committed at the leader change)", got)
	}
	c.sameState(qs)
}

// A consume whose checkout is reported failed (lost in a leader change, as
// far as the proposer knows) proposes it again: the client gets consume-ok
// and its messages, not an error that closes its connection (506).
func TestQuorumConsumeRetriesACheckoutLostInALeaderChange(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	c.f.lie.Store(1) // the checkout commits, its proposer is told it failed
	a := &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatalf("consume: %v", err)
	}
	c.settle()
	if got := a.bodies(); got != "m" {
		t.Fatalf("the consumer got %q", got)
	}
	qs[1].Ack(a.deliveries()...)
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	c.sameState(qs)
}

// What a nack means at a leader change, defined: "not known to be stored",
// never "not stored". The cluster fails a publish's proposal as soon as the
// leader it waited on goes away, and such an entry may still commit; the
// publisher is nacked (as for a timeout) and the message is delivered all
// the same. A publisher that re-sends nacked messages may see one twice
// (docs/clustering.md, "Known limitations"). A confirm, on the other hand,
// always means committed and applied.
func TestQuorumNackAtLeaderChangeMayStillBeStored(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	conf := &qconfirms{}
	c.f.lie.Store(1) // committed, but its proposer hears of a failure
	c.publish(1, "q", "maybe", message.Properties{}, conf, 1)
	c.publish(1, "q", "sure", message.Properties{}, conf, 2)
	c.settle()
	err, ok := conf.result(1)
	if !ok || err == nil {
		t.Fatalf("publish 1: confirm %v %v, want a nack", ok, err)
	}
	var na *notAppliedError
	if !errors.As(err, &na) {
		t.Fatalf("publish 1: nack %v, want a notAppliedError (may be stored)", err)
	}
	if err, ok := conf.result(2); !ok || err != nil {
		t.Fatalf("publish 2: %v %v, want a confirm", ok, err)
	}
	a := &qtaker{}
	if err := qs[1].Consume(a, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if got := a.bodies(); got != "maybe,sure" {
		t.Fatalf("consumed %q: the nacked message was committed and must be delivered", got)
	}
}
