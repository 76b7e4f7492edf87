package broker

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

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
	if len(m.dead) != 0 || m.msgs.get(0) == nil || m.msgs.get(0).count != 1 || m.msgs.get(0).owner == nil || m.msgs.get(0).acquired != 2 {
		t.Fatalf("a return applied twice: dead %d, msg %+v", len(m.dead), m.msgs.get(0))
	}
	for _, k := range []qcmdKind{qcSettleAt, qcDiscardAt} {
		apply(qcmd{kind: k, node: 1, refs: []qref{{key: key, id: 0, acquired: 1}}})
		if m.msgs.get(0) == nil || m.msgs.get(0).owner == nil {
			t.Fatalf("a stale %d settled the next delivery", k)
		}
	}
	// A cancel keeping the first delivery does not keep the second.
	apply(qcmd{kind: qcCancelAt, node: 1, key: key, keep: []qref{{id: 0, acquired: 1}}})
	if m.msgs.get(0).owner != nil || m.ready.len() != 1 || m.msgs.get(0).count != 1 {
		t.Fatalf("after the cancel: msg %+v", m.msgs.get(0))
	}
}

// A basic.get that times out answers get-empty; if its entry applies
// later, the message goes back to the queue (not counted), rather than
// staying checked out to the node's get holder for good — or, no-ack,
// being dropped unseen.
func TestQuorumLateGetGivesItsMessageBack(t *testing.T) {
	t.Parallel()
	for _, noAck := range []bool{false, true} {
		c := newQCluster(t, 2)
		qs := c.declare("q", nil)
		c.publish(1, "q", "m", message.Properties{}, nil, 0)
		c.settle()
		before := c.clk.Pending()
		release := c.f.hold()
		type answer struct {
			d  Delivery
			ok bool
		}
		ch := make(chan answer, 1)
		go func() { d, ok := qs[1].Get(noAck); ch <- answer{d, ok} }()
		qwaitFor(t, 5*time.Second, "the get's timer", func() bool { return c.clk.Pending() > before })
		c.clk.Advance(quorumWait)
		var a answer
		select {
		case a = <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("the get did not time out")
		}
		if a.ok {
			t.Fatalf("no-ack %v: a get that timed out returned %q", noAck, a.d.Msg.Body)
		}
		release()
		c.settle()
		wantCounts(t, qs, 1, 0, 0)
		d, ok := qs[0].Get(true)
		if !ok || string(d.Msg.Body) != "m" || d.Msg.Props.Headers[HeaderDeliveryCount] != nil {
			t.Fatalf("no-ack %v: then got %v %+v", noAck, ok, d)
		}
		c.settle()
		wantCounts(t, qs, 0, 0, 0)
		c.sameState(qs)
	}
}

// A replica restored from a snapshot that holds consumers of an earlier
// run of its node announces its run, so their messages come back.
func TestQuorumRestoreAnnouncesTheNodesRun(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	wantCounts(t, qs, 0, 1, 1)
	snap, err := qs[0].backend.(*quorumBackend).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Node 2 restarts: a new run, whose replica catches up from the
	// snapshot (which still has the earlier run's consumer).
	b2 := qs[1].backend.(*quorumBackend)
	b2.mu.Lock()
	b2.epoch ^= 2
	b2.getKey = uint64(b2.epoch) << 32
	b2.local, b2.locals = map[uint64]*qlocal{}, nil
	b2.mu.Unlock()
	if err := b2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	c.settle()
	wantCounts(t, qs, 1, 0, 0)
	c.sameState(qs)
}

// Expiry follows the leader's ticks only: entries from a node whose clock
// runs an hour ahead do not expire messages early on every replica.
func TestQuorumSkewedNodeDoesNotExpireMessages(t *testing.T) {
	t.Parallel()
	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1, ttl: 10 * time.Minute, hasTTL: true})
	t0 := time.Unix(1_700_000_000, 0).UnixNano()
	apply := func(c qcmd) {
		if c.kind == qcEnqueue {
			c.record = message.AppendMessage(nil, &message.Message{RoutingKey: "q", Body: []byte("x"), Published: c.ts})
		}
		m.Apply(0, c.encode(nil))
	}
	apply(qcmd{kind: qcEnqueue, node: 1, ts: t0})
	ahead := t0 + int64(time.Hour)
	apply(qcmd{kind: qcTouch, node: 2, ts: ahead})
	apply(qcmd{kind: qcCheckout, node: 2, ts: ahead, key: 5 << 32, prefetch: 1, flags: 0})
	apply(qcmd{kind: qcCancelAt, node: 2, ts: ahead, key: 5 << 32})
	apply(qcmd{kind: qcEnqueue, node: 2, ts: ahead})
	if m.ready.len() != 2 {
		t.Fatalf("entries of a node an hour ahead expired messages: %d ready", m.ready.len())
	}
	apply(qcmd{kind: qcTick, node: 1, ts: t0 + int64(5*time.Minute)})
	if m.ready.len() != 2 {
		t.Fatalf("%d ready after 5 minutes", m.ready.len())
	}
	apply(qcmd{kind: qcTick, node: 1, ts: t0 + int64(11*time.Minute)})
	if m.ready.len() != 1 {
		t.Fatalf("%d ready after 11 minutes, want the skewed node's message left", m.ready.len())
	}
}

// A snapshot keeps a message's delivery count: a replica restored from one
// delivers it with x-delivery-count.
func TestQuorumRestoreKeepsTheDeliveryCount(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	a, b := &qtaker{}, &qtaker{}
	if err := qs[0].Consume(a, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	if err := qs[1].Consume(b, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m", message.Properties{}, nil, 0)
	c.settle()
	if a.bodies() != "m" {
		t.Fatalf("a got %q", a.bodies())
	}
	c.f.setLive(2, false)
	qs[0].RequeueFailed(a.deliveries()) // assigned to b, on node 2, which is away
	c.settle()
	snap, err := qs[0].backend.(*quorumBackend).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := c.f.groups["group-q"]
	release := c.f.hold()
	if err := qs[1].backend.(*quorumBackend).Restore(snap); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	r2, n := g.replicas[2], len(g.entries)
	g.mu.Unlock()
	r2.applied = n
	release()
	c.f.setLive(2, true)
	c.settle()
	ds := b.deliveries()
	if len(ds) != 1 || !ds[0].Redelivered || ds[0].Msg.Props.Headers[HeaderDeliveryCount] != int64(1) {
		t.Fatalf("after the snapshot b got %+v", ds)
	}
}

// Applying a quorum queue's declaration proposes nothing (its x-expires
// countdown starts on the leader); a redeclare touches it once, from the
// client's node.
func TestQuorumDeclarationTouchesOnlyOnRedeclare(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", map[string]any{"x-expires": int32(60_000)})
	touches := func() int {
		g := c.f.groups["group-q"]
		g.mu.Lock()
		defer g.mu.Unlock()
		n := 0
		for _, e := range g.entries {
			if qcmdKind(e[0]) == qcTouch {
				n++
			}
		}
		return n
	}
	if n := touches(); n != 0 {
		t.Fatalf("declaring on 3 nodes proposed %d touches", n)
	}
	if _, err := c.bs[1].VHost("/").DeclareQueue(qs[1].cfg, false, 1); err != nil {
		t.Fatal(err)
	}
	c.settle()
	if n := touches(); n != 1 {
		t.Fatalf("a redeclare proposed %d touches", n)
	}
	// Unused for its x-expires by the leader's clock: deleted.
	c.clk.Advance(61 * time.Second)
	c.settle()
	qwaitFor(t, 5*time.Second, "the deletion", func() bool { return c.bs[0].VHost("/").queue("q") == nil })
}

// Settlements that fail together wait in one batch with one timer, and
// go out again as one entry (when a leader becomes known, or at the timer).
func TestQuorumFailedSettlementsRetryAsOneBatch(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.publish(1, "q", "m", message.Properties{}, nil, 0)
	}
	c.settle()
	c.f.setLeader(0)
	c.settle()
	before := c.clk.Pending()
	for _, d := range cons.deliveries() {
		qs[1].Ack(d)
	}
	c.settle()
	if n := c.clk.Pending() - before; n != 1 {
		t.Fatalf("5 failed acks armed %d timers", n)
	}
	g := c.f.groups["group-q"]
	g.mu.Lock()
	n0 := len(g.entries)
	g.mu.Unlock()
	// A leader becoming known sends the batch at once (LeaderChanged);
	// its timer then finds nothing left.
	c.f.setLeader(1)
	c.settle()
	c.clk.Advance(quorumRetry)
	c.settle()
	g.mu.Lock()
	added := g.entries[n0:]
	g.mu.Unlock()
	if len(added) != 1 || qcmdKind(added[0][0]) != qcSettleAt {
		t.Fatalf("the retry made %d entries", len(added))
	}
	wantCounts(t, qs, 0, 0, 1)
}

// qwaitFor polls cond every millisecond for at most timeout: for what
// another goroutine does with no event to wait on.
func qwaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recLog is a DelayedLog that records removals.
type recLog struct {
	mu      sync.Mutex
	removed []string
}

func (l *recLog) Put(string, *message.Message, message.Completion, uint64) error { return nil }
func (l *recLog) Remove(key string) {
	l.mu.Lock()
	l.removed = append(l.removed, key)
	l.mu.Unlock()
}

// A delayed message routed to a quorum queue that did not apply it in
// time keeps its record (routed again at the next start), while a storage
// failure of a classic queue still drops it; and a quorum publish without
// a leader reports exactly that kind of failure.
func TestDelayedRecordStaysWhenAQuorumQueueDidNotTakeIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		kept bool
	}{
		{nil, false},
		{errors.New("disk full"), false},
		{&notAppliedError{errFakeNoLeader}, true},
	} {
		l := &recLog{}
		r := &routedDelayed{log: l, key: "k", logger: slog.New(slog.DiscardHandler)}
		r.left.Store(2)
		r.Durable(0, nil)
		r.Durable(0, tc.err)
		if kept := len(l.removed) == 0; kept != tc.kept {
			t.Errorf("%v: record kept %v", tc.err, kept)
		}
	}

	c := newQCluster(t, 2)
	c.declare("q", nil)
	c.f.setLeader(0)
	conf := &qconfirms{}
	c.publish(1, "q", "x", message.Properties{}, conf, 7)
	c.settle()
	var na *notAppliedError
	if err, ok := conf.result(7); !ok || !errors.As(err, &na) {
		t.Fatalf("confirm without a leader: %v %v", ok, err)
	}
}
