package forward

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/message"
	"go.etcd.io/raft/v3/raftpb"
)

// Two (or more) brokers built with broker.New and memstore, joined by real
// TCP transports on 127.0.0.1 and by a metadata fake that applies every
// definition command to every broker in one order before Propose returns
// (the idea of internal/broker/meta_fake_test.go).

type fakeMeta struct {
	mu    sync.Mutex
	nodes []*broker.Broker
}

type fakeMember struct{ f *fakeMeta }

func (m fakeMember) Propose(ctx context.Context, c broker.Command) error {
	enc := broker.EncodeCommand(c)
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	for _, b := range m.f.nodes {
		if b == nil {
			continue
		}
		dc, err := broker.DecodeCommand(enc)
		if err != nil {
			return err
		}
		if err := b.ApplyReplicated(dc); err != nil {
			return err
		}
	}
	return nil
}

// route is the node's transport Handler: forwarding kinds go to f, once
// it exists.
type route struct {
	mu sync.Mutex
	f  *Forwarder
}

func (r *route) get() *Forwarder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f
}

func (r *route) HandleRaft(transport.NodeID, transport.Group, []*raftpb.Message) {}

func (r *route) HandleRequest(ctx context.Context, from transport.NodeID, kind uint8, body []byte) ([]byte, error) {
	f := r.get()
	if f == nil || !Owns(kind) {
		return nil, fmt.Errorf("kind %d not served", kind)
	}
	return f.HandleRequest(ctx, from, kind, body)
}

func (r *route) HandleNotify(from transport.NodeID, kind uint8, body []byte) {
	if f := r.get(); f != nil && Owns(kind) {
		f.HandleNotify(from, kind, body)
	}
}

type node struct {
	id uint64
	b  *broker.Broker
	v  *broker.VHost
	f  *Forwarder
	tr *transport.TCP
}

var testSecret = []byte("forward-test-secret")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newCluster starts n nodes (ids 1…n); tweak adjusts each Forwarder's
// configuration.
func newCluster(t testing.TB, n int, tweak func(*Config)) []*node {
	t.Helper()
	nodes := make([]*node, n)
	routes := make([]*route, n)
	for i := range nodes {
		id := uint64(i + 1)
		routes[i] = &route{}
		tr, err := transport.NewTCP(transport.TCPConfig{Self: id, ListenAddr: "127.0.0.1:0", Secret: testSecret,
			Handler: routes[i], Logger: quietLogger(), ConnectWait: 300 * time.Millisecond,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &node{id: id, tr: tr}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.SetPeer(b.id, b.tr.Addr().String())
			}
		}
	}
	startNodes(t, nodes, routes, func(nd *node) transport.Transport { return nd.tr }, tweak)
	return nodes
}

// startNodes builds each node's Forwarder (over tr(nd)) and broker, and
// routes its transport's forwarding kinds to the Forwarder.
func startNodes(t testing.TB, nodes []*node, routes []*route, tr func(*node) transport.Transport, tweak func(*Config)) {
	meta := &fakeMeta{nodes: make([]*broker.Broker, len(nodes))}
	for i, nd := range nodes {
		cfg := Config{Self: nd.id, Transport: tr(nd), Logger: quietLogger(),
			RequestTimeout: 2 * time.Second, PublishTimeout: 2 * time.Second,
			KeepaliveInterval: 50 * time.Millisecond, LeaseTimeout: 400 * time.Millisecond}
		if tweak != nil {
			tweak(&cfg)
		}
		nd.f = New(cfg)
		nd.b = broker.New(broker.Config{Storage: memstore.New(), Logger: quietLogger(),
			Replication: broker.Replication{Node: nd.id, Metadata: fakeMember{meta}, Forward: nd.f}})
		nd.f.SetBroker(nd.b)
		nd.v = nd.b.VHost("/")
		meta.mu.Lock()
		meta.nodes[i] = nd.b
		meta.mu.Unlock()
		routes[i].mu.Lock()
		routes[i].f = nd.f
		routes[i].mu.Unlock()
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.f.Close()
			if nd.tr != nil {
				_ = nd.tr.Close()
			}
		}
	})
}

// declare declares a durable classic queue on nd (its owner).
func declare(t *testing.T, nd *node, name string, args map[string]any) {
	t.Helper()
	if _, err := nd.v.DeclareQueue(broker.QueueConfig{Name: name, Durable: true, Args: args}, false, 1); err != nil {
		t.Fatal(err)
	}
}

func queueOf(t *testing.T, nd *node, name string) *broker.Queue {
	t.Helper()
	q, err := nd.v.Queue(name, 0)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// confirms records a publisher's outcomes, like an AMQP channel's
// confirm tracker: Durable records, DurableBatchEnd counts batches.
type confirms struct {
	mu      sync.Mutex
	got     map[uint64]error
	batches int
	ch      chan struct{}
}

func newConfirms() *confirms { return &confirms{got: map[uint64]error{}, ch: make(chan struct{}, 1)} }

func (c *confirms) Durable(token uint64, err error) {
	c.mu.Lock()
	if _, dup := c.got[token]; dup {
		panic("token confirmed twice: " + strconv.FormatUint(token, 10))
	}
	c.got[token] = err
	c.mu.Unlock()
}

func (c *confirms) DurableBatchEnd() {
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

// wait returns once n outcomes are in, or fails the test.
func (c *confirms) wait(t *testing.T, n int, within time.Duration) map[uint64]error {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		if len(c.got) >= n {
			out := make(map[uint64]error, len(c.got))
			for k, v := range c.got {
				out[k] = v
			}
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			c.mu.Lock()
			got := len(c.got)
			c.mu.Unlock()
			t.Fatalf("%d of %d publish outcomes after %v", got, n, within)
		}
	}
}

func publish(t *testing.T, nd *node, s *broker.RouteScratch, queue, body string, persistent bool, done message.Completion, token uint64) broker.PublishResult {
	t.Helper()
	m := &message.Message{RoutingKey: queue, Body: []byte(body)}
	if persistent {
		m.Props.DeliveryMode = 2
	}
	res, err := nd.v.Publish(s, m, done, token)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// consumer is a local consumer with a prefetch, like an AMQP channel's:
// it refuses beyond prefetch unacked and records what it took.
type consumer struct {
	mu       sync.Mutex
	prefetch int
	noAck    bool
	unacked  []broker.Delivery
	got      []string
	refuse   bool // take nothing (a full outbound buffer)
	cancels  int
	ch       chan struct{}
}

func newConsumer(prefetch int, noAck bool) *consumer {
	return &consumer{prefetch: prefetch, noAck: noAck, ch: make(chan struct{}, 1)}
}

func (c *consumer) TryDeliver(d broker.Delivery) broker.Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse || (!c.noAck && c.prefetch > 0 && len(c.unacked) >= c.prefetch) {
		return broker.Refuse
	}
	c.got = append(c.got, string(d.Msg.Body))
	if !c.noAck {
		c.unacked = append(c.unacked, d)
	}
	c.poke()
	return broker.Take
}

func (c *consumer) poke() {
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *consumer) Cancelled(*broker.Queue) {
	c.mu.Lock()
	c.cancels++
	c.mu.Unlock()
	c.poke()
}

// take removes and returns the unacked deliveries.
func (c *consumer) take() []broker.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	ds := c.unacked
	c.unacked = nil
	return ds
}

func (c *consumer) snapshot() (got []string, unacked, cancels int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...), len(c.unacked), c.cancels
}

// waitFor polls cond (each time the consumer is poked, and every 10 ms)
// until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, poke <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		select {
		case <-poke:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func bodies(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func newClusterB(b *testing.B) []*node { return newCluster(b, 2, nil) }
