package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

// A declare on one node is on every node when it returns; the node that
// declared a classic queue holds it (its log, its messages), the others
// know it as remote; nothing goes to any node's own definitions log.
func TestClusterDeclareIsEverywhereOnReturn(t *testing.T) {
	t.Parallel()
	_, nodes := newCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	if _, err := n2.v.DeclareExchange(broker.ExchangeConfig{Name: "x", Type: broker.TypeTopic, Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	q := declare(t, n1.v, broker.QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-max-length": int32(5)}})
	if err := n3.v.BindQueue("q", "x", "a.*", nil, 1); err != nil {
		t.Fatal(err)
	}
	declare(t, n3.v, broker.QueueConfig{Name: "t"}) // transient: replicated too
	auto := declare(t, n2.v, broker.QueueConfig{Name: ""})
	for i, n := range nodes {
		if _, err := n.v.Exchange("x"); err != nil {
			t.Errorf("node %d: %v", i+1, err)
		}
		got := queueOn(t, n, "q")
		if got.Node() != 1 || got.Remote() != (i != 0) {
			t.Errorf("node %d: queue q node %d remote %v", i+1, got.Node(), got.Remote())
		}
		if queueOn(t, n, "t").Node() != 3 || queueOn(t, n, auto.Name()).Node() != 2 {
			t.Errorf("node %d: transient queues' nodes wrong", i+1)
		}
		if !hasBinding(n.v, "x", "q", "a.*") {
			t.Errorf("node %d: binding missing", i+1)
		}
		if cmds := n.st.Commands(); len(cmds) != 0 || n.st.Saves() != 0 {
			t.Errorf("node %d logged %d commands and %d snapshots locally", i+1, len(cmds), n.st.Saves())
		}
	}
	sameEverywhere(t, nodes)
	id := idOf(t, n1.b, "q")
	if !n1.st.HasLog(id) || n2.st.HasLog(id) || n3.st.HasLog(id) {
		t.Errorf("queue q's log must be on node 1 only")
	}
	// Node 1 takes the message; node 2's copy refuses it (the cluster
	// layer forwards instead) rather than keep it where nobody looks.
	if res := send(t, n1.v, "x", "a.b", "m1", message.Properties{}); res.Routed != 1 {
		t.Errorf("publish on node 1: %+v", res)
	}
	if got := counts(q); got[0] != 1 {
		t.Errorf("node 1's queue counts %v", got)
	}
	if res := send(t, n2.v, "x", "a.b", "m2", message.Properties{}); !res.Rejected {
		t.Errorf("publish into a remote queue on node 2: %+v", res)
	}
	if err := queueOn(t, n2, "q").Consume(newTaker(1), broker.ConsumeOptions{}); err == nil {
		t.Error("consuming from a remote queue must fail here")
	}
	// A redeclare anywhere is checked against the replicated queue.
	if _, err := n3.v.DeclareQueue(broker.QueueConfig{Name: "q", Durable: true}, false, 1); !errors.Is(err, broker.ErrPreconditionFailed) {
		t.Errorf("inequivalent redeclare on node 3: %v", err)
	}
	if _, err := n2.v.DeclareQueue(broker.QueueConfig{Name: "amq.q"}, false, 1); !errors.Is(err, broker.ErrAccessRefused) {
		t.Errorf("reserved name: %v", err)
	}
}

// Two nodes declare the same queue at once, each having checked that it
// did not exist: the first committed wins, and the other node's client
// gets the error a redeclare of the winner would give it.
func TestClusterConcurrentDeclaresFirstCommittedWins(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		first    broker.QueueConfig // node 2's, committed first
		second   broker.QueueConfig // node 1's, held back
		wantErr  error
		wantNode uint64
	}{
		{"inequivalent", broker.QueueConfig{Name: "q", Durable: false}, broker.QueueConfig{Name: "q", Durable: true}, broker.ErrPreconditionFailed, 2},
		{"inequivalent args", broker.QueueConfig{Name: "q", Args: map[string]any{"x-message-ttl": int32(5)}},
			broker.QueueConfig{Name: "q", Args: map[string]any{"x-message-ttl": int32(6)}}, broker.ErrPreconditionFailed, 2},
		{"equivalent", broker.QueueConfig{Name: "q", Durable: true}, broker.QueueConfig{Name: "q", Durable: true}, nil, 2},
		{"exclusive", broker.QueueConfig{Name: "q", Exclusive: true}, broker.QueueConfig{Name: "q", Exclusive: true}, broker.ErrResourceLocked, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, nodes := newCluster(t, 3, nil)
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			f.before = func(node uint64, c broker.Command) {
				if _, ok := c.(broker.DeclareQueue); ok && node == 1 {
					once.Do(func() { close(held) })
					<-release
				}
			}
			errc := make(chan error, 1)
			go func() {
				_, err := nodes[0].v.DeclareQueue(tc.second, false, 1)
				errc <- err
			}()
			<-held // node 1 validated (no queue q) and proposed
			if _, err := nodes[1].v.DeclareQueue(tc.first, false, 1); err != nil {
				t.Fatal(err)
			}
			close(release)
			select {
			case err := <-errc:
				if (tc.wantErr == nil && err != nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("node 1's declare: %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("node 1's declare did not return")
			}
			for i, n := range nodes {
				if q := queueOn(t, n, "q"); q.Node() != tc.wantNode || q.Config().Durable != tc.first.Durable {
					t.Errorf("node %d: queue q %+v on node %d, want node 2's", i+1, q.Config(), q.Node())
				}
			}
			sameEverywhere(t, nodes)
		})
	}
}

// A bind proposed while another node deletes its queue: the delete
// commits first, the bind then finds no queue and its client gets
// NOT_FOUND. (Had the queue been declared again meanwhile, the recheck
// would bind the new queue by the name the client gave — a valid order
// of the two clients' requests.)
func TestClusterBindRacingADelete(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 2, nil)
	declare(t, nodes[0].v, broker.QueueConfig{Name: "q", Durable: true})
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.before = func(node uint64, c broker.Command) {
		if _, ok := c.(broker.Bind); ok && node == 1 {
			once.Do(func() { close(held) })
			<-release
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- nodes[0].v.BindQueue("q", "amq.direct", "k", nil, 1) }()
	<-held
	if _, err := nodes[1].v.DeleteQueue("q", false, false, 1); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-errc; !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("bind to a queue deleted meanwhile: %v", err)
	}
	for i, n := range nodes {
		if len(n.v.Bindings()) != 0 {
			t.Errorf("node %d has bindings %v", i+1, n.v.Bindings())
		}
	}
	sameEverywhere(t, nodes)
}

// Deletes, binds and unbinds made on one node act on every node; a queue's
// delete closes it on the node holding it, removes its log there and
// cancels its consumers there — after the deleting client's reply when
// that client is on the same node.
func TestClusterDeleteBindUnbindAcrossNodes(t *testing.T) {
	t.Parallel()
	_, nodes := newCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	for _, name := range []string{"x", "y"} {
		if _, err := n1.v.DeclareExchange(broker.ExchangeConfig{Name: name, Type: broker.TypeDirect, Durable: true}, false); err != nil {
			t.Fatal(err)
		}
	}
	q := declare(t, n1.v, broker.QueueConfig{Name: "q", Durable: true})
	declare(t, n1.v, broker.QueueConfig{Name: "q2", Durable: true})
	id := idOf(t, n1.b, "q")
	if err := n2.v.BindQueue("q", "x", "k", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := n3.v.BindExchange("y", "x", "k2", nil); err != nil {
		t.Fatal(err)
	}
	if err := n2.v.BindQueue("q", "x", "k", nil, 1); err != nil { // exists: no change
		t.Fatal(err)
	}
	if err := n3.v.BindQueue("nope", "x", "k", nil, 1); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("bind to a missing queue: %v", err)
	}
	for i, n := range nodes {
		if len(n.v.Bindings()) != 2 {
			t.Fatalf("node %d bindings %v", i+1, n.v.Bindings())
		}
	}
	if err := n3.v.UnbindQueue("q", "x", "k", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := n1.v.UnbindExchange("y", "x", "k2", nil); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if len(n.v.Bindings()) != 0 {
			t.Fatalf("node %d bindings after unbind %v", i+1, n.v.Bindings())
		}
	}
	if err := n2.v.DeleteExchange("y", false); err != nil {
		t.Fatal(err)
	}
	send(t, n1.v, "", "q", "m", message.Properties{DeliveryMode: 2})
	// if-empty is the holding node's to check.
	if _, err := n1.v.DeleteQueue("q", false, true, 1); !errors.Is(err, broker.ErrPreconditionFailed) {
		t.Errorf("if-empty delete of a non-empty queue: %v", err)
	}
	// Node 2 deletes node 1's queue: it goes everywhere, with its log.
	c := newTaker(-1)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.v.DeleteQueue("q", false, false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.cancelled:
	default:
		t.Error("node 1's consumer was not cancelled")
	}
	if n1.st.HasLog(id) {
		t.Error("the deleted queue's log is still on node 1")
	}
	// Node 1 deletes its own queue: the message count comes back and the
	// consumer hears of it only when the client cancels after its reply.
	q2 := queueOn(t, n1, "q2")
	send(t, n1.v, "", "q2", "m", message.Properties{})
	send(t, n1.v, "", "q2", "m", message.Properties{})
	c2 := newTaker(0)
	if err := q2.Consume(c2, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	n, cancel, err := n1.v.DeleteQueueThenCancel("q2", false, false, 1)
	if err != nil || n != 2 {
		t.Fatalf("delete: %d messages, %v", n, err)
	}
	select {
	case <-c2.cancelled:
		t.Fatal("consumer cancelled before the client's reply")
	default:
	}
	cancel()
	<-c2.cancelled
	if _, err := n3.v.DeleteQueue("q2", false, false, 1); err != nil { // gone: fine
		t.Fatal(err)
	}
	for i, n := range nodes {
		if qs := n.v.Queues(); len(qs) != 0 {
			t.Errorf("node %d still has %d queues", i+1, len(qs))
		}
		if _, err := n.v.Exchange("y"); !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("node %d: exchange y: %v", i+1, err)
		}
	}
	sameEverywhere(t, nodes)
}

// A node's own queues go by its timers and its connections: x-expires,
// auto-delete after the last consumer and an exclusive queue's connection
// closing each delete the queue on every node.
func TestClusterOwnerDeletesItsQueues(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	_, nodes := newCluster(t, 3, clk)
	n1, n2 := nodes[0], nodes[1]
	declare(t, n1.v, broker.QueueConfig{Name: "exp", Durable: true, Args: map[string]any{"x-expires": int32(1000)}})
	ad := declare(t, n2.v, broker.QueueConfig{Name: "ad", AutoDelete: true})
	if _, err := n1.v.DeclareQueue(broker.QueueConfig{Name: "ex", Exclusive: true}, false, 7); err != nil {
		t.Fatal(err)
	}
	// Only connection 7 of node 1 may use the exclusive queue.
	if _, err := n1.v.Queue("ex", 8); !errors.Is(err, broker.ErrResourceLocked) {
		t.Errorf("another connection: %v", err)
	}
	if _, err := n2.v.Queue("ex", 7); !errors.Is(err, broker.ErrResourceLocked) {
		t.Errorf("connection 7 of node 2: %v", err)
	}
	if _, err := n1.v.Queue("ex", 7); err != nil {
		t.Errorf("its owner: %v", err)
	}
	c := newTaker(-1)
	if err := ad.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	ad.Cancel(c)
	n1.v.DeleteExclusive(7)
	clk.Advance(2 * time.Second)
	for i, n := range nodes {
		if qs := n.v.Queues(); len(qs) != 0 {
			t.Errorf("node %d still has %v", i+1, qs[0].Name())
		}
	}
}

// A snapshot restored on a fresh node, or on a node whose definitions
// went another way, gives the same definitions; replaying the whole log
// over the restored state (entries the snapshot holds applied again)
// changes nothing; a snapshot's bytes are the same on every node.
func TestClusterSnapshotRestoreAndReplay(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	n2.b.AddVHost("v2")
	v2 := n3.b.VHost("v2")
	if v2 == nil {
		t.Fatal("vhost v2 is not on node 3")
	}
	for i := range 6 {
		x, q := fmt.Sprintf("x%d", i), fmt.Sprintf("q%d", i)
		n := nodes[i%3]
		if _, err := n.v.DeclareExchange(broker.ExchangeConfig{Name: x, Type: broker.TypeTopic, Durable: i%2 == 0,
			Args: map[string]any{"alternate-exchange": "ae"}}, false); err != nil {
			t.Fatal(err)
		}
		declare(t, n.v, broker.QueueConfig{Name: q, Durable: i%2 == 1, Args: map[string]any{"x-message-ttl": int32(i + 1)}})
		if err := n.v.BindQueue(q, x, "k.*", map[string]any{"n": int64(i)}, 1); err != nil {
			t.Fatal(err)
		}
		if err := n.v.BindQueue(q, "amq.topic", "b.#", nil, 1); err != nil {
			t.Fatal(err)
		}
	}
	// Deleted and declared again: the new queue has another id, so a
	// replayed delete of the old one must leave it.
	if _, err := n2.v.DeleteQueue("q1", false, false, 1); err != nil {
		t.Fatal(err)
	}
	declare(t, n3.v, broker.QueueConfig{Name: "q1", Durable: true})
	if err := n1.v.DeleteExchange("x2", false); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.v.DeclareExchange(broker.ExchangeConfig{Name: "x2", Type: broker.TypeFanout}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := v2.DeclareQueue(broker.QueueConfig{Name: "in-v2", Durable: true}, false, 1); err != nil {
		t.Fatal(err)
	}
	if err := n3.v.UnbindQueue("q3", "amq.topic", "b.#", nil, 1); err != nil {
		t.Fatal(err)
	}
	snap := sameEverywhere(t, nodes)

	// A fresh node.
	g := &fakeMeta{}
	fresh := newClusterNode(g, 4, nil)
	if err := fresh.b.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	if got := snapshotOf(t, fresh.b); !bytes.Equal(got, snap) {
		t.Fatalf("restored definitions differ:\n%s\n%s", got, snap)
	}
	// The whole log again, over the restored state.
	for _, e := range f.entries() {
		if err := applyEncoded(fresh.b, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := snapshotOf(t, fresh.b); !bytes.Equal(got, snap) {
		t.Fatalf("replaying the log over the snapshot changed the definitions:\n%s\n%s", got, snap)
	}

	// A node that went its own way: restoring brings it back.
	h := &fakeMeta{}
	other := newClusterNode(h, 5, nil)
	h.nodes = []*broker.Broker{other.b}
	declare(t, other.v, broker.QueueConfig{Name: "q0", Durable: true}) // another q0
	declare(t, other.v, broker.QueueConfig{Name: "stray"})
	if _, err := other.v.DeclareExchange(broker.ExchangeConfig{Name: "x0", Type: broker.TypeDirect}, false); err != nil {
		t.Fatal(err)
	}
	if err := other.v.BindQueue("stray", "amq.direct", "s", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := other.b.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	if got := snapshotOf(t, other.b); !bytes.Equal(got, snap) {
		t.Fatalf("restoring over other definitions:\n%s\n%s", got, snap)
	}
	if _, err := fresh.b.DefinitionsSnapshot(); err != nil {
		t.Fatal(err)
	}
	if err := fresh.b.RestoreDefinitions([]byte("{")); err == nil {
		t.Error("a corrupt snapshot must be refused")
	}
}

// A node restarted from the metadata finds its exclusive and transient
// queues of before, whose connections and messages died with it: they
// are locked to every connection until DeleteLeftovers removes them
// everywhere; its durable queues stay and reopen their logs.
func TestClusterRestartedNodeDeletesLeftovers(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	n1 := nodes[0]
	if _, err := n1.v.DeclareQueue(broker.QueueConfig{Name: "ex", Exclusive: true}, false, 1); err != nil {
		t.Fatal(err)
	}
	declare(t, n1.v, broker.QueueConfig{Name: "tr"})
	declare(t, n1.v, broker.QueueConfig{Name: "du", Durable: true})
	declare(t, nodes[1].v, broker.QueueConfig{Name: "other"}) // node 2's: not node 1's to delete
	send(t, n1.v, "", "du", "kept", message.Properties{DeliveryMode: 2})
	snap := snapshotOf(t, n1.b)

	// Node 1 restarts on its store.
	b := broker.New(broker.Config{Storage: n1.st, Replication: broker.Replication{Node: 1, Metadata: fakeMember{f: f, node: 1}}})
	f.mu.Lock()
	f.nodes[0] = b
	f.mu.Unlock()
	if err := b.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	v := b.VHost("/")
	if _, err := v.Queue("ex", 1); !errors.Is(err, broker.ErrResourceLocked) {
		t.Errorf("a previous run's exclusive queue: %v", err)
	}
	if err := b.DeleteLeftovers(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*broker.Broker{b, nodes[1].b, nodes[2].b} {
		var names []string
		for _, q := range n.VHost("/").Queues() {
			names = append(names, q.Name())
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"du", "other"}) {
			t.Errorf("node %d queues %v", i+1, names)
		}
	}
	du, err := v.Queue("du", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(du); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("durable queue after restart: %v", got)
	}
}

// Forgetting a node that left for good deletes, everywhere, the queues it
// held and no other.
func TestClusterForgetNode(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	declare(t, nodes[2].v, broker.QueueConfig{Name: "gone-durable", Durable: true})
	declare(t, nodes[2].v, broker.QueueConfig{Name: "gone-transient"})
	declare(t, nodes[0].v, broker.QueueConfig{Name: "kept", Durable: true})
	f.mu.Lock()
	f.nodes = f.nodes[:2] // node 3 is gone
	f.mu.Unlock()
	gone, err := nodes[1].b.ForgetNode(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(gone); !slices.Equal(gone, []string{"gone-durable (vhost /)", "gone-transient (vhost /)"}) {
		t.Errorf("ForgetNode reported %v", gone)
	}
	for i, n := range nodes[:2] {
		if qs := n.v.Queues(); len(qs) != 1 || qs[0].Name() != "kept" {
			t.Errorf("node %d has %d queues", i+1, len(qs))
		}
	}
}

// A down node's transient queues (non-durable or exclusive) are deleted
// everywhere, as RabbitMQ's on_node_down does; its durable ones and every
// other node's stay.
func TestClusterDeleteTransientOf(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	declare(t, nodes[2].v, broker.QueueConfig{Name: "down-durable", Durable: true})
	declare(t, nodes[2].v, broker.QueueConfig{Name: "down-transient", AutoDelete: true})
	if _, err := nodes[2].v.DeclareQueue(broker.QueueConfig{Name: "down-exclusive", Durable: true, Exclusive: true}, false, 7); err != nil {
		t.Fatal(err)
	}
	declare(t, nodes[0].v, broker.QueueConfig{Name: "live-transient"})
	f.mu.Lock()
	f.nodes = f.nodes[:2] // node 3 is down
	f.mu.Unlock()
	if gone, err := nodes[0].b.DeleteTransientOf(context.Background(), 1); err != nil || len(gone) != 0 {
		t.Fatalf("DeleteTransientOf its own node: %v, %v", gone, err)
	}
	gone, err := nodes[1].b.DeleteTransientOf(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(gone); !slices.Equal(gone, []string{"down-exclusive (vhost /)", "down-transient (vhost /)"}) {
		t.Errorf("DeleteTransientOf reported %v", gone)
	}
	for i, n := range nodes[:2] {
		var names []string
		for _, q := range n.v.Queues() {
			names = append(names, q.Name())
		}
		if slices.Sort(names); !slices.Equal(names, []string{"down-durable", "live-transient"}) {
			t.Errorf("node %d has %v", i+1, names)
		}
	}
}

// A single node (no Metadata) is unchanged: declares are logged locally.
func TestNoClusterStillLogsLocally(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st, Replication: broker.Replication{Node: 3}})
	q := declare(t, b.VHost("/"), broker.QueueConfig{Name: "q", Durable: true})
	if len(st.Commands()) != 1 || q.Node() != 0 || q.Remote() {
		t.Fatalf("commands %v, node %d", st.Commands(), q.Node())
	}
	if _, err := b.VHost("/").DeclareQueue(broker.QueueConfig{Name: "e", Exclusive: true}, false, 4); err != nil {
		t.Fatal(err)
	}
	if _, err := b.VHost("/").Queue("e", 4); err != nil {
		t.Fatalf("exclusive queue's owner: %v", err)
	}
}

// A command that is stale when applied changes nothing and is no error.
func TestApplyReplicatedStaleCommandsAreNoOps(t *testing.T) {
	t.Parallel()
	_, nodes := newCluster(t, 1, nil)
	n := nodes[0]
	declare(t, n.v, broker.QueueConfig{Name: "q", Durable: true})
	before := snapshotOf(t, n.b)
	for _, c := range []broker.Command{
		broker.DeleteQueue{VHost: "/", Name: "missing", ID: "x"},
		broker.DeleteQueue{VHost: "/", Name: "q", ID: "another-queue-of-the-name"},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "amq.direct", Destination: "missing"}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "amq.direct", Destination: "q", DestID: "another"}},
		broker.Bind{BindingDef: broker.BindingDef{VHost: "/", Source: "missing", Destination: "q"}},
		broker.Unbind{BindingDef: broker.BindingDef{VHost: "/", Source: "amq.direct", Destination: "q"}},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "y", Node: 1, QueueConfig: broker.QueueConfig{Name: "q"}}},
		broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "/", ID: "z", QueueConfig: broker.QueueConfig{Name: "bad",
			Args: map[string]any{"x-max-length": "nope"}}}},
		broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: "/", ExchangeConfig: broker.ExchangeConfig{Name: "bad", Type: "nope"}}},
		broker.DeleteExchange{VHost: "/", Name: "missing"},
		broker.DeleteExchange{VHost: "/", Name: ""},
	} {
		if err := n.b.ApplyReplicated(c); err != nil {
			t.Errorf("%T %+v: %v", c, c, err)
		}
	}
	if got := snapshotOf(t, n.b); !bytes.Equal(got, before) {
		t.Fatalf("stale commands changed the definitions:\n%s\n%s", got, before)
	}
}

// Clients on every node changing the same few names at once: whatever
// each gets, every node ends with the same definitions.
func TestClusterConcurrentChangesConverge(t *testing.T) {
	t.Parallel()
	_, nodes := newCluster(t, 3, nil)
	var wg sync.WaitGroup
	for w := range 6 {
		n := nodes[w%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				q, x := fmt.Sprintf("q%d", (i+w)%4), fmt.Sprintf("x%d", i%3)
				switch (i + w) % 6 {
				case 0:
					_, _ = n.v.DeclareQueue(broker.QueueConfig{Name: q, Durable: w%2 == 0}, false, uint64(w))
				case 1:
					_, _ = n.v.DeclareExchange(broker.ExchangeConfig{Name: x, Type: broker.TypeDirect, AutoDelete: w%2 == 1}, false)
				case 2:
					_ = n.v.BindQueue(q, x, "k", nil, uint64(w))
				case 3:
					_ = n.v.UnbindQueue(q, x, "k", nil, uint64(w))
				case 4:
					_, _ = n.v.DeleteQueue(q, false, false, uint64(w))
				case 5:
					_ = n.v.DeleteExchange(x, false)
				}
			}
		}()
	}
	wg.Wait()
	sameEverywhere(t, nodes)
}

// With nodes applying at their own pace, concurrent clients on every node
// (consumers being cancelled by other nodes' deletes included) leave every
// node with the same definitions once all have caught up.
func TestClusterAsyncApplyConverges(t *testing.T) {
	t.Parallel()
	a, nodes := newAsyncCluster(t, 3)
	var wg sync.WaitGroup
	for w := range 6 {
		n := nodes[w%3]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				q, x := fmt.Sprintf("q%d", (i+w)%3), fmt.Sprintf("x%d", i%2)
				switch (i + w) % 5 {
				case 0:
					if got, err := n.v.DeclareQueue(broker.QueueConfig{Name: q, Durable: true}, false, uint64(w)); err == nil && !got.Remote() {
						_ = got.Consume(newTaker(-1), broker.ConsumeOptions{})
					}
				case 1:
					_, _ = n.v.DeclareExchange(broker.ExchangeConfig{Name: x, Type: broker.TypeFanout}, false)
				case 2:
					_ = n.v.BindQueue(q, x, "", nil, uint64(w))
				case 3:
					_, _ = n.v.DeleteQueue(q, false, false, uint64(w))
				case 4:
					_ = n.v.UnbindQueue(q, x, "", nil, uint64(w))
				}
			}
		}()
	}
	wg.Wait()
	if err := a.caughtUp(); err != nil {
		t.Fatal(err)
	}
	sameEverywhere(t, nodes)
}

// noGroups is a QuorumGroups whose replicas never open (a node whose WAL
// is broken).
type noGroups struct{}

func (noGroups) Open(broker.QueueDef, broker.ReplicatedMachine) (broker.ReplicatedLog, error) {
	return nil, errors.New("noGroups: cannot open")
}

// A quorum queue in the metadata: what every node would refuse is refused
// before proposing; one that a node cannot open is still in every node's
// definitions (with no node of its own: every node holds a replica), held
// by a backend that keeps nothing, rather than missing there or crashing
// the apply.
func TestClusterQuorumQueueDefinitions(t *testing.T) {
	t.Parallel()
	f := &fakeMeta{}
	var nodes []clusterNode
	for id := range uint64(2) {
		st := memstore.New()
		b := broker.New(broker.Config{Storage: st, Replication: broker.Replication{Node: id + 1,
			Metadata: fakeMember{f: f, node: id + 1}, Quorum: noGroups{}}})
		nodes = append(nodes, clusterNode{b: b, st: st, v: b.VHost("/")})
		f.nodes = append(f.nodes, b)
	}
	quorum := map[string]any{"x-queue-type": "quorum"}
	if _, err := nodes[0].v.DeclareQueue(broker.QueueConfig{Name: "bad", Args: quorum}, false, 1); !errors.Is(err, broker.ErrPreconditionFailed) {
		t.Fatalf("a non-durable quorum queue: %v", err)
	}
	if n := len(f.entries()); n != 0 {
		t.Fatalf("an invalid declare was proposed (%d entries)", n)
	}
	q := declare(t, nodes[0].v, broker.QueueConfig{Name: "qq", Durable: true, Args: quorum})
	if q.Node() != 0 || q.Remote() || q.Type() != broker.Quorum {
		t.Errorf("quorum queue: node %d remote %v type %v", q.Node(), q.Remote(), q.Type())
	}
	if res := send(t, nodes[1].v, "", "qq", "m", message.Properties{}); !res.Rejected {
		t.Errorf("a replica that did not open took a message: %+v", res)
	}
	sameEverywhere(t, nodes)
}

// A closing connection's exclusive queues are deleted with concurrent
// proposals: here each proposal waits until all three are being made, so
// proposing them one after another would wait out every deadline.
func TestDeleteExclusiveProposesConcurrently(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 2, clock.NewFake(time.Unix(1_700_000_000, 0)))
	for _, name := range []string{"e1", "e2", "e3"} {
		if _, err := nodes[0].v.DeclareQueue(broker.QueueConfig{Name: name, Exclusive: true}, false, 7); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	arrived, waitedOut := 0, 0
	all := make(chan struct{})
	f.before = func(_ uint64, c broker.Command) {
		if _, ok := c.(broker.DeleteQueue); !ok {
			return
		}
		mu.Lock()
		if arrived++; arrived == 3 {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(2 * time.Second):
			mu.Lock()
			waitedOut++
			mu.Unlock()
		}
	}
	nodes[0].v.DeleteExclusive(7)
	if waitedOut != 0 {
		t.Fatalf("%d deletions were proposed alone", waitedOut)
	}
	for i, n := range nodes {
		if qs := n.v.Queues(); len(qs) != 0 {
			t.Errorf("node %d still has %v", i+1, qs[0].Name())
		}
	}
}
