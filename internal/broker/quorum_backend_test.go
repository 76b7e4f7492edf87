package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

// qcluster is N brokers, one per node, sharing a fakeRaft and a fake
// clock: a quorum queue declared on each (as the metadata group would) has
// one replica per node.
type qcluster struct {
	t   testing.TB
	f   *fakeRaft
	clk *clock.Fake
	bs  []*Broker // bs[i] is node i+1
}

// settle waits until the groups and every node's quorum backends have
// done all their work.
func (c *qcluster) settle() { c.t.Helper(); c.f.quiesce() }

func newQCluster(t testing.TB, n int) *qcluster {
	t.Helper()
	c := &qcluster{t: t, f: newFakeRaft(t, 1), clk: clock.NewFake(time.Unix(1_700_000_000, 0))}
	for i := 1; i <= n; i++ {
		c.bs = append(c.bs, New(Config{Clock: c.clk, Replication: Replication{Node: uint64(i), Quorum: c.f.node(uint64(i))}}))
	}
	return c
}

// declare declares quorum queue name on every node; it returns the queue
// of each node, index i for node i+1.
func (c *qcluster) declare(name string, args map[string]any) []*Queue {
	c.t.Helper()
	a := map[string]any{"x-queue-type": "quorum"}
	for k, v := range args {
		a[k] = v
	}
	var qs []*Queue
	for _, b := range c.bs {
		err := b.Apply(DeclareQueue{QueueDef{VHost: "/", ID: "group-" + name, QueueConfig: QueueConfig{Name: name, Durable: true, Args: a}}})
		if err != nil {
			c.t.Fatalf("declare %s: %v", name, err)
		}
		qs = append(qs, b.VHost("/").queue(name))
	}
	c.settle()
	return qs
}

// deadLetterQueues declares on every node a fanout exchange "dlx" and a
// classic queue "dead" bound to it.
func (c *qcluster) deadLetterQueues() []*Queue {
	c.t.Helper()
	var qs []*Queue
	for _, b := range c.bs {
		v := b.VHost("/")
		if _, err := v.DeclareExchange(ExchangeConfig{Name: "dlx", Type: TypeFanout, Durable: true}, false); err != nil {
			c.t.Fatal(err)
		}
		q, err := v.DeclareQueue(QueueConfig{Name: "dead", Durable: true}, false, 1)
		if err != nil {
			c.t.Fatal(err)
		}
		if err := v.BindQueue("dead", "dlx", "", nil, 1); err != nil {
			c.t.Fatal(err)
		}
		qs = append(qs, q)
	}
	return qs
}

func (c *qcluster) publish(node int, queue, body string, props message.Properties, done message.Completion, token uint64) {
	c.t.Helper()
	var s RouteScratch
	m := &message.Message{Exchange: "", RoutingKey: queue, Body: []byte(body), Props: props}
	if _, err := c.bs[node-1].VHost("/").Publish(&s, m, done, token); err != nil {
		c.t.Fatal(err)
	}
}

// sameState checks that every replica of qs reached the same state.
func (c *qcluster) sameState(qs []*Queue) {
	c.t.Helper()
	c.settle()
	var first []byte
	for i, q := range qs {
		snap, err := q.backend.(*quorumBackend).Snapshot()
		if err != nil {
			c.t.Fatal(err)
		}
		if i == 0 {
			first = snap
		} else if !bytes.Equal(first, snap) {
			c.t.Fatalf("replica on node %d differs from node 1", i+1)
		}
	}
}

func wantCounts(t *testing.T, qs []*Queue, ready, unacked, consumers int) {
	t.Helper()
	for i, q := range qs {
		if r, u, n := q.Counts(); r != ready || u != unacked || n != consumers {
			t.Fatalf("node %d: counts %d/%d/%d, want %d/%d/%d", i+1, r, u, n, ready, unacked, consumers)
		}
	}
}

// qtaker is a consumer that takes everything offered, unless refusing is
// switched on.
type qtaker struct {
	mu     sync.Mutex
	got    []Delivery
	refuse bool
}

func (c *qtaker) TryDeliver(d Delivery) Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse {
		return Refuse
	}
	c.got = append(c.got, d)
	return Take
}

func (c *qtaker) Cancelled(*Queue) {}

func (c *qtaker) deliveries() []Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Delivery(nil), c.got...)
}

func (c *qtaker) bodies() string {
	var out []string
	for _, d := range c.deliveries() {
		s := string(d.Msg.Body)
		if d.Redelivered {
			s += "*"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// qconfirms records publisher confirms.
type qconfirms struct {
	mu  sync.Mutex
	got map[uint64]error
}

func (c *qconfirms) Durable(token uint64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = map[uint64]error{}
	}
	c.got[token] = err
}

func (c *qconfirms) result(token uint64) (error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err, ok := c.got[token]
	return err, ok
}

func TestQuorumPublishOnOneNodeConsumeOnAnother(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	conf := &qconfirms{}
	for i := range 5 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, conf, uint64(i))
	}
	c.settle()
	for i := range 5 {
		if err, ok := conf.result(uint64(i)); !ok || err != nil {
			t.Fatalf("confirm %d: %v %v", i, ok, err)
		}
	}
	if got := cons.bodies(); got != "m0,m1,m2,m3,m4" {
		t.Fatalf("consumer on node 2 got %s", got)
	}
	wantCounts(t, qs, 0, 5, 1)
	qs[1].Ack(cons.deliveries()...)
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	c.sameState(qs)
}

// Prefetch is credit in the machine: a consumer gets no more than its
// prefetch until it acks, and a refused delivery waits for Dispatch.
func TestQuorumPrefetchAndDispatch(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{refuse: true}
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	wantCounts(t, qs, 2, 2, 1)
	if got := cons.bodies(); got != "" {
		t.Fatalf("a refusing consumer got %s", got)
	}
	cons.mu.Lock()
	cons.refuse = false
	cons.mu.Unlock()
	qs[2].Dispatch()
	if got := cons.bodies(); got != "m0,m1" {
		t.Fatalf("after dispatch: %s", got)
	}
	qs[2].Ack(cons.deliveries()[0])
	c.settle()
	if got := cons.bodies(); got != "m0,m1,m2" {
		t.Fatalf("after one ack: %s", got)
	}
	c.sameState(qs)
}

// Requeued messages go back in their original order, marked redelivered,
// ahead of newer ones.
func TestQuorumRequeueKeepsOriginalOrder(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 3}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c.publish(3, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	ds := cons.deliveries()
	qs[1].Requeue([]Delivery{ds[2], ds[0]})
	c.settle()
	if got := cons.bodies(); got != "m0,m1,m2,m0*,m2*" {
		t.Fatalf("deliveries %s", got)
	}
	for i, d := range cons.deliveries() {
		// A plain requeue (basic.nack) is not a failed delivery.
		if n, ok := d.Msg.Props.Headers[HeaderDeliveryCount]; ok {
			t.Fatalf("delivery %d: x-delivery-count %v after a plain requeue", i, n)
		}
	}
	// A failed one (basic.reject with requeue) is counted.
	qs[1].RequeueFailed([]Delivery{cons.deliveries()[3]})
	c.settle()
	if got := cons.bodies(); got != "m0,m1,m2,m0*,m2*,m0*" {
		t.Fatalf("deliveries %s", got)
	}
	if n := cons.deliveries()[5].Msg.Props.Headers[HeaderDeliveryCount]; n != int64(1) {
		t.Fatalf("x-delivery-count %v after a failed delivery", n)
	}
	qs[1].Ack(cons.deliveries()[4:]...)
	qs[1].Ack(cons.deliveries()[1])
	c.settle()
	if got := cons.bodies(); got != "m0,m1,m2,m0*,m2*,m0*,m3,m4" {
		t.Fatalf("deliveries %s", got)
	}
	c.sameState(qs)
}

// A message whose delivery failed (basic.reject with requeue) more often
// than x-delivery-limit is dead-lettered with reason delivery_limit, once,
// by the leader. Plain requeues (basic.nack) do not count (RabbitMQ 4.3).
func TestQuorumDeliveryLimitDeadLetters(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	dead := c.deadLetterQueues()
	qs := c.declare("q", map[string]any{"x-delivery-limit": int32(1), "x-dead-letter-exchange": "dlx"})
	cons := &qtaker{}
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	c.publish(2, "q", "poison", message.Properties{}, nil, 0)
	for round := range 5 {
		c.settle()
		ds := cons.deliveries()
		if len(ds) != round+1 {
			t.Fatalf("round %d: %d deliveries", round, len(ds))
		}
		qs[2].Requeue(ds[round:])
	}
	for round := 5; round < 7; round++ {
		c.settle()
		ds := cons.deliveries()
		if len(ds) != round+1 {
			t.Fatalf("round %d: %d deliveries", round, len(ds))
		}
		qs[2].RequeueFailed(ds[round:])
	}
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	if r, _, _ := dead[0].Counts(); r != 1 {
		t.Fatalf("leader's dead-letter queue holds %d", r)
	}
	for i := 1; i < 3; i++ {
		if r, _, _ := dead[i].Counts(); r != 0 {
			t.Fatalf("node %d dead-lettered too: %d", i+1, r)
		}
	}
	d, ok := dead[0].Get(true)
	if !ok || d.Msg.Props.Headers["x-first-death-reason"] != "delivery_limit" {
		t.Fatalf("dead letter %v %v", ok, d.Msg.Props.Headers)
	}
	c.sameState(qs)
}

// TTL expiry is a tick the leader proposes when the head is due; the
// machine expires by the entry's time on every replica alike.
func TestQuorumTTLExpiresByProposal(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	dead := c.deadLetterQueues()
	qs := c.declare("q", map[string]any{"x-message-ttl": int32(1000), "x-dead-letter-exchange": "dlx"})
	c.publish(2, "q", "a", message.Properties{}, nil, 0)
	c.publish(3, "q", "b", message.Properties{Expiration: "300"}, nil, 0) // behind a: expires when a does
	c.settle()
	wantCounts(t, qs, 2, 0, 0)
	c.clk.Advance(500 * time.Millisecond)
	c.settle()
	wantCounts(t, qs, 2, 0, 0)
	c.clk.Advance(600 * time.Millisecond)
	c.settle()
	wantCounts(t, qs, 0, 0, 0)
	if r, _, _ := dead[0].Counts(); r != 2 {
		t.Fatalf("leader's dead-letter queue holds %d", r)
	}
	if r, _, _ := dead[1].Counts(); r != 0 {
		t.Fatalf("a follower dead-lettered %d", r)
	}
	c.sameState(qs)
}

func TestQuorumGetAndPurge(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	for i := range 4 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	d, ok := qs[2].Get(false)
	if !ok || string(d.Msg.Body) != "m0" || d.Remaining != 3 || d.Redelivered {
		t.Fatalf("get: %v %+v", ok, d)
	}
	qs[2].Requeue([]Delivery{d})
	d, ok = qs[1].Get(true)
	if !ok || string(d.Msg.Body) != "m0" || !d.Redelivered {
		t.Fatalf("get after requeue: %v %+v", ok, d)
	}
	d, ok = qs[1].Get(false)
	if !ok || string(d.Msg.Body) != "m1" {
		t.Fatalf("get: %v %+v", ok, d)
	}
	if n := qs[0].Purge(); n != 2 {
		t.Fatalf("purged %d", n)
	}
	c.settle()
	wantCounts(t, qs, 0, 1, 0)
	qs[1].Ack(d)
	c.settle()
	wantCounts(t, qs, 0, 0, 0)
	if _, ok := qs[0].Get(false); ok {
		t.Fatal("get from an empty queue")
	}
	c.sameState(qs)
}

func TestQuorumRejectPublishNacks(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", map[string]any{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	conf := &qconfirms{}
	for i := range 3 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, conf, uint64(i))
	}
	c.settle()
	for i, want := range []bool{true, true, false} {
		err, ok := conf.result(uint64(i))
		if !ok || (err == nil) != want {
			t.Fatalf("confirm %d: %v %v", i, ok, err)
		}
	}
	wantCounts(t, qs, 2, 0, 0)
}

func TestQuorumDropHeadDeadLetters(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	dead := c.deadLetterQueues()
	qs := c.declare("q", map[string]any{"x-max-length": int32(1), "x-dead-letter-exchange": "dlx"})
	c.publish(1, "q", "old", message.Properties{}, nil, 0)
	c.publish(2, "q", "new", message.Properties{}, nil, 0)
	c.settle()
	wantCounts(t, qs, 1, 0, 0)
	if d, ok := dead[0].Get(true); !ok || string(d.Msg.Body) != "old" || d.Msg.Props.Headers["x-first-death-reason"] != "maxlen" {
		t.Fatalf("dead letter %v %+v", ok, d)
	}
}

// A cancelled consumer keeps what it took until its channel settles it;
// what its node held for it goes back.
func TestQuorumCancelKeepsTakenReturnsPending(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 4}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	cons.mu.Lock()
	cons.refuse = true
	cons.mu.Unlock()
	for i := 2; i < 4; i++ {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	wantCounts(t, qs, 0, 4, 1)
	qs[1].Cancel(cons)
	c.settle()
	wantCounts(t, qs, 2, 2, 0)
	qs[1].Ack(cons.deliveries()...)
	c.settle()
	wantCounts(t, qs, 2, 0, 0)
	c.sameState(qs)
}

func TestQuorumNoAckConsumerSettlesOnDelivery(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[2].Consume(cons, ConsumeOptions{NoAck: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.publish(1, "q", fmt.Sprint("m", i), message.Properties{}, nil, 0)
	}
	c.settle()
	if cons.bodies() != "m0,m1,m2" {
		t.Fatalf("got %q", cons.bodies())
	}
	wantCounts(t, qs, 0, 0, 1)
}

func TestQuorumExclusiveConsumer(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	if err := qs[0].Consume(&qtaker{}, ConsumeOptions{Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	err := qs[1].Consume(&qtaker{}, ConsumeOptions{})
	if !errors.Is(err, ErrAccessRefused) {
		t.Fatalf("second consumer of an exclusive one: %v", err)
	}
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
}

// RabbitMQ's refusals, with its texts.
func TestQuorumDeclareRefusals(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 1)
	v := c.bs[0].VHost("/")
	q := func(cfg QueueConfig) error {
		a := map[string]any{"x-queue-type": "quorum"}
		for k, x := range cfg.Args {
			a[k] = x
		}
		cfg.Args = a
		_, err := v.DeclareQueue(cfg, false, 1)
		return err
	}
	for _, tc := range []struct {
		cfg  QueueConfig
		want string
	}{
		{QueueConfig{Name: "a"}, "invalid property 'non-durable' for queue 'a' in vhost '/'"},
		{QueueConfig{Name: "b", Durable: true, AutoDelete: true}, "invalid property 'auto-delete' for queue 'b' in vhost '/'"},
		{QueueConfig{Name: "c", Durable: true, Exclusive: true}, "invalid property 'exclusive-owner' for queue 'c' in vhost '/'"},
		{QueueConfig{Name: "d", Durable: true, Args: map[string]any{"x-max-priority": int32(5)}}, "invalid arg 'x-max-priority' for queue 'd' in vhost '/'"},
		{QueueConfig{Name: "e", Durable: true, Args: map[string]any{"x-overflow": "reject-publish-dlx"}}, "invalid arg 'x-overflow' with value 'reject-publish-dlx' for queue 'e' in vhost '/'"},
		{QueueConfig{Name: "f", Durable: true, Args: map[string]any{"x-quorum-initial-group-size": int32(0)}}, "invalid arg 'x-quorum-initial-group-size' for queue 'f' in vhost '/': {value_zero,0}"},
		{QueueConfig{Name: "g", Durable: true, Args: map[string]any{"x-delivery-limit": "x"}}, "invalid arg 'x-delivery-limit' for queue 'g' in vhost '/': {unacceptable_type,x}"},
	} {
		err := q(tc.cfg)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindPreconditionFailed || e.Text != tc.want {
			t.Errorf("%s: %v, want %q", tc.cfg.Name, err, tc.want)
		}
	}
	if err := q(QueueConfig{Name: "ok", Durable: true, Args: map[string]any{"x-quorum-initial-group-size": int32(3)}}); err != nil {
		t.Fatal(err)
	}
	if qq := v.queue("ok"); qq.Type() != Quorum || qq.GroupSize() != 3 || QuorumGroupSize(qq.cfg.Args) != 3 || QuorumGroupSize(nil) != 0 {
		t.Fatalf("type %v group size %d", qq.Type(), qq.GroupSize())
	}
}

// A broker without Replication.Quorum refuses the type as before.
func TestQuorumRefusedWithoutCluster(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}).VHost("/").DeclareQueue(QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-queue-type": "quorum"}}, false, 1)
	if err == nil || !strings.Contains(err.Error(), "invalid arg 'x-queue-type' for queue 'q' in vhost '/': {unsupported_queue_type,quorum}") {
		t.Fatalf("%v", err)
	}
}

func TestQuorumDeleteStopsTheReplica(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[0].Consume(cons, ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.bs[0].VHost("/").DeleteQueue("q", true, false, 1); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("if-unused delete of a queue in use: %v", err)
	}
	c.publish(1, "q", "x", message.Properties{}, nil, 0)
	c.settle()
	for _, b := range c.bs {
		if _, err := b.VHost("/").DeleteQueue("q", false, false, 1); err != nil {
			t.Fatal(err)
		}
	}
	c.settle()
	if got := c.bs[0].queuedBytes.Load(); got != 0 {
		t.Fatalf("deleted queue still accounts %d bytes", got)
	}
	g := c.f.groups["group-q"]
	if n := len(g.replicaList()); n != 0 {
		t.Fatalf("%d replicas left", n)
	}
}

// A replicated declaration must name the group: nodes choosing their own
// would each open a different one.
func TestQuorumReplicatedDeclareNeedsAGroupID(t *testing.T) {
	t.Parallel()
	f := newFakeRaft(t, 1)
	b := New(Config{Replication: Replication{Node: 1, Quorum: f.node(1), Metadata: noMetadata{}}})
	v := b.VHost("/")
	apply := func(id string) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.applyLocked(DeclareQueue{QueueDef{VHost: "/", ID: id, QueueConfig: QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-queue-type": "quorum"}}}}, &effects{replay: true})
	}
	if err := apply(""); err == nil || !strings.Contains(err.Error(), "without a group id") {
		t.Fatalf("%v", err)
	}
	if err := apply(NewQueueID()); err != nil {
		t.Fatal(err)
	}
}

type noMetadata struct{}

func (noMetadata) Propose(context.Context, Command) error { return errors.New("not used") }

// Messages assigned to a consumer after its node let it go and before its
// cancel applies go back, marked redelivered (quorum_order_test.go); what
// its channel holds stays checked out to it.
func TestQuorumAssignedWhileCancelling(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{Prefetch: 5}); err != nil {
		t.Fatal(err)
	}
	c.publish(1, "q", "m0", message.Properties{}, nil, 0)
	c.settle()
	release := c.f.hold()
	c.publish(1, "q", "m1", message.Properties{}, nil, 0)
	qs[1].Cancel(cons)
	release()
	c.settle()
	wantCounts(t, qs, 1, 1, 0)
	if cons.bodies() != "m0" {
		t.Fatalf("a cancelled consumer got %q", cons.bodies())
	}
	if d, ok := qs[0].Get(true); !ok || string(d.Msg.Body) != "m1" || !d.Redelivered {
		t.Fatalf("get %v %+v", ok, d)
	}
	qs[1].Ack(cons.deliveries()...)
	c.settle()
	wantCounts(t, qs, 0, 0, 0)
	c.sameState(qs)
}

// x-expires: the leader deletes the queue once nothing used it for that
// long — no consumer, no get, no redeclare on any node.
func TestQuorumExpiresDeletesAnUnusedQueue(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", map[string]any{"x-expires": int32(1000)})
	exists := func(node int) bool { return c.bs[node-1].VHost("/").queue("q") == qs[node-1] }
	c.clk.Advance(600 * time.Millisecond)
	c.settle()
	cons := &qtaker{}
	if err := qs[1].Consume(cons, ConsumeOptions{}); err != nil { // a consumer on the follower
		t.Fatal(err)
	}
	c.settle()
	c.clk.Advance(3 * time.Second)
	c.settle()
	if !exists(1) {
		t.Fatal("deleted while a consumer on another node used it")
	}
	qs[1].Cancel(cons)
	c.settle()
	c.clk.Advance(600 * time.Millisecond)
	c.settle()
	if _, err := c.bs[1].VHost("/").DeclareQueue(QueueConfig{Name: "q", Durable: true, Args: qs[1].cfg.Args}, false, 1); err != nil {
		t.Fatal(err) // a redeclare on the follower restarts the countdown
	}
	c.settle()
	c.clk.Advance(600 * time.Millisecond)
	c.settle()
	if !exists(1) {
		t.Fatal("deleted less than x-expires after a redeclare")
	}
	c.clk.Advance(500 * time.Millisecond)
	c.settle()
	if exists(1) {
		t.Fatal("the leader kept a queue unused for longer than x-expires")
	}
}

// Dead letters of a quorum queue into another quorum queue: the leader
// publishes each once, so every replica of the target holds it once.
func TestQuorumDeadLettersIntoAQuorumQueue(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	for _, b := range c.bs {
		if _, err := b.VHost("/").DeclareExchange(ExchangeConfig{Name: "dlx", Type: TypeFanout, Durable: true}, false); err != nil {
			t.Fatal(err)
		}
	}
	dead := c.declare("dead", nil)
	for _, b := range c.bs {
		if err := b.VHost("/").BindQueue("dead", "dlx", "", nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	qs := c.declare("q", map[string]any{"x-dead-letter-exchange": "dlx"})
	cons := &qtaker{}
	if err := qs[2].Consume(cons, ConsumeOptions{Prefetch: 2}); err != nil {
		t.Fatal(err)
	}
	c.publish(2, "q", "a", message.Properties{}, nil, 0)
	c.publish(2, "q", "b", message.Properties{}, nil, 0)
	c.settle()
	qs[2].Reject(cons.deliveries())
	c.settle()
	wantCounts(t, qs, 0, 0, 1)
	wantCounts(t, dead, 2, 0, 0)
	d, ok := dead[1].Get(true)
	if !ok || string(d.Msg.Body) != "a" || d.Msg.Props.Headers["x-first-death-reason"] != "rejected" {
		t.Fatalf("dead letter %v %+v", ok, d)
	}
	c.sameState(dead)
}
