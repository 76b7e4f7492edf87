package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// An in-process cluster of real brokers: each node is a Node with a
// broker.Broker on it, wired as internal/server wires them (without
// storage: quorum queues need none, their messages are in the WAL).

type brokerNode struct {
	*testNode
	b *broker.Broker
}

func startBrokerCluster(t testing.TB, n int, opts ...func(*Config)) []*brokerNode {
	t.Helper()
	nodes := newTestNodes(t, n)
	for _, tn := range nodes {
		for _, o := range opts {
			o(&tn.cfg)
		}
	}
	out := make([]*brokerNode, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, tn := range nodes {
		bn := &brokerNode{testNode: tn}
		out[i] = bn
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, err := New(tn.cfg)
			if err != nil {
				errs[i] = err
				return
			}
			tn.node = node
			t.Cleanup(func() { _ = node.Close() })
			bn.b = broker.New(broker.Config{Replication: broker.Replication{Node: node.ID(), Metadata: node,
				Quorum: node.Quorum(), Forward: node.Forwarder()}})
			node.Forwarder().SetBroker(bn.b)
			errs[i] = node.Start(context.Background(), bn.b)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", nodes[i].cfg.Self.Name, err)
		}
	}
	return out
}

// restart starts a closed node again on its data directory, with a new
// broker (its definitions and queues come back from the WAL).
func (bn *brokerNode) restart(t *testing.T) {
	t.Helper()
	node, err := New(bn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	bn.node = node
	bn.b = broker.New(broker.Config{Replication: broker.Replication{Node: node.ID(), Metadata: node,
		Quorum: node.Quorum(), Forward: node.Forwarder()}})
	node.Forwarder().SetBroker(bn.b)
	if err := node.Start(context.Background(), bn.b); err != nil {
		t.Fatal(err)
	}
}

func (bn *brokerNode) queue(t *testing.T, name string) *broker.Queue {
	t.Helper()
	q := bn.b.VHost("/").LookupQueue(name)
	if q == nil {
		t.Fatalf("%s has no queue %s", bn.cfg.Self.Name, name)
	}
	return q
}

// quorumLeader is the node leading the quorum queue's group, as node
// from sees it ("" while none is known).
func quorumLeader(from *brokerNode, queue string) string {
	for _, g := range from.node.Status().Groups {
		if g.Kind == "quorum" && g.Queue == queue {
			return g.Leader
		}
	}
	return ""
}

// confirm is a publish's outcome.
type confirm struct{ err error }

type confirms chan confirm

func (c confirms) Durable(_ uint64, err error) { c <- confirm{err} }

// publish publishes body to queue through bn with a confirm and returns
// the publish's result and the channel its confirm comes on.
func (bn *brokerNode) publish(t *testing.T, queue, body string) (broker.PublishResult, confirms) {
	t.Helper()
	done := make(confirms, 1)
	m := &message.Message{Exchange: "", RoutingKey: queue, Body: []byte(body), Props: message.Properties{DeliveryMode: 2}}
	res, err := bn.b.VHost("/").Publish(&broker.RouteScratch{}, m, done, 0)
	if err != nil {
		t.Fatalf("publish %s through %s: %v", body, bn.cfg.Self.Name, err)
	}
	return res, done
}

// publishUntilConfirmed publishes body to queue through bn until a
// publish is confirmed, publishing again after a nack (a publish in
// flight at a leader change is nacked): at least once.
func (bn *brokerNode) publishUntilConfirmed(t *testing.T, queue, body string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := make(confirms, 1)
		m := &message.Message{Exchange: "", RoutingKey: queue, Body: []byte(body), Props: message.Properties{DeliveryMode: 2}}
		res, err := bn.b.VHost("/").Publish(&broker.RouteScratch{}, m, done, 0)
		if err == nil && res.Routed == 1 && !res.Rejected && res.Pending == 1 {
			select {
			case c := <-done:
				if c.err == nil {
					return
				}
				err = c.err
			case <-time.After(time.Until(deadline)):
				err = errors.New("no confirm")
			}
		} else if err == nil {
			err = fmt.Errorf("publish result %+v", res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing %s through %s: %v", body, bn.cfg.Self.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// chanConsumer hands its deliveries to a channel; the test acks them.
type chanConsumer struct {
	ch        chan broker.Delivery
	cancelled chan struct{}
	once      sync.Once
}

func newChanConsumer() *chanConsumer {
	return &chanConsumer{ch: make(chan broker.Delivery, 1000), cancelled: make(chan struct{})}
}

func (c *chanConsumer) TryDeliver(d broker.Delivery) broker.Verdict {
	select {
	case c.ch <- d:
		return broker.Take
	default:
		return broker.Refuse
	}
}

func (c *chanConsumer) Cancelled(*broker.Queue) { c.once.Do(func() { close(c.cancelled) }) }

func (c *chanConsumer) next(t *testing.T, timeout time.Duration) broker.Delivery {
	t.Helper()
	select {
	case d := <-c.ch:
		return d
	case <-time.After(timeout):
		t.Fatal("no delivery")
	}
	return broker.Delivery{}
}

// serveAMQP serves AMQP 0-9-1 on bn's broker (user guest/guest) until the
// test ends and returns its URL.
func (bn *brokerNode) serveAMQP(t *testing.T) string {
	t.Helper()
	users := auth.NewStore()
	users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest")})
	users.SetPermission("guest", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := amqp.NewServer(amqp.Config{}, bn.b, users, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "amqp://guest:guest@" + ln.Addr().String() + "/"
}
