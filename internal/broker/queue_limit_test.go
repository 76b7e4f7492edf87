package broker_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
)

// Two declares made at once through two nodes of a cluster, with one
// queue left under the vhost's max-queues: both pass their node's
// validation, and the one the metadata group applies second is refused on
// every node alike, its client getting RabbitMQ's 406 text.
func TestClusterMaxQueuesRefusedAtApply(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	if err := nodes[2].b.Change(broker.SetVHostLimit{VHost: "/", Name: auth.LimitMaxQueues, Value: 2}); err != nil {
		t.Fatal(err)
	}
	declare(t, nodes[2].v, broker.QueueConfig{Name: "first", Durable: true})
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
		_, err := nodes[0].v.DeclareQueue(broker.QueueConfig{Name: "a", Durable: true}, false, 1)
		errc <- err
	}()
	<-held // node 1 validated "a" (one queue, limit 2) and proposed it
	if _, err := nodes[1].v.DeclareQueue(broker.QueueConfig{Name: "b", Durable: true}, false, 1); err != nil {
		t.Fatal(err)
	}
	close(release)
	select {
	case err := <-errc:
		if !errors.Is(err, broker.ErrPreconditionFailed) ||
			!strings.Contains(err.Error(), "cannot declare queue 'a' in vhost '/': vhost queue limit (2) is reached") {
			t.Fatalf("node 1's declare past the limit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node 1's declare did not return")
	}
	for i, n := range nodes {
		if got := len(n.v.Queues()); got != 2 {
			t.Errorf("node %d holds %d queues, want 2 (the limit)", i+1, got)
		}
	}
	sameEverywhere(t, nodes)

	// A redeclare at the limit adds nothing and passes; a delete frees a
	// place for the next declare, through any node.
	declare(t, nodes[0].v, broker.QueueConfig{Name: "b", Durable: true})
	if _, err := nodes[0].v.DeleteQueue("first", false, false, 1); err != nil {
		t.Fatal(err)
	}
	declare(t, nodes[0].v, broker.QueueConfig{Name: "a", Durable: true})
	sameEverywhere(t, nodes)
}

// A limit lowered below the queues a vhost holds deletes none of them,
// and a restart replays them all: the log holds what was accepted.
func TestMaxQueuesLoweredKeepsQueuesAcrossRestart(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st})
	v := b.VHost("/")
	for _, n := range []string{"a", "b", "c"} {
		declare(t, v, broker.QueueConfig{Name: n, Durable: true})
	}
	if err := b.Change(broker.SetVHostLimit{VHost: "/", Name: auth.LimitMaxQueues, Value: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeclareQueue(broker.QueueConfig{Name: "d", Durable: true}, false, 1); !errors.Is(err, broker.ErrPreconditionFailed) {
		t.Fatalf("declare over the lowered limit: %v", err)
	}
	// The first restart replays the log and writes a snapshot; the
	// second restores the snapshot, limit and all.
	for i := range 2 {
		v2 := restart(t, st)
		if got := len(v2.Queues()); got != 3 {
			t.Fatalf("restart %d: %d queues, want 3", i+1, got)
		}
		if _, err := v2.DeclareQueue(broker.QueueConfig{Name: "d", Durable: true}, false, 1); !errors.Is(err, broker.ErrPreconditionFailed) {
			t.Fatalf("restart %d: the limit: %v", i+1, err)
		}
	}
}

// A cluster node restoring a snapshot: a low limit the node had must not
// refuse queues the cluster accepted, or the node's definitions would
// part from the others'.
func TestMaxQueuesDoesNotRefuseARestoredSnapshot(t *testing.T) {
	t.Parallel()
	_, src := newCluster(t, 1, nil)
	for _, n := range []string{"a", "b", "c"} {
		declare(t, src[0].v, broker.QueueConfig{Name: n, Durable: true})
	}
	if err := src[0].b.Change(broker.SetVHostLimit{VHost: "/", Name: auth.LimitMaxQueues, Value: 3}); err != nil {
		t.Fatal(err)
	}
	snap := snapshotOf(t, src[0].b)
	_, dst := newCluster(t, 1, nil)
	if err := dst[0].b.Change(broker.SetVHostLimit{VHost: "/", Name: auth.LimitMaxQueues, Value: 0}); err != nil {
		t.Fatal(err)
	}
	if err := dst[0].b.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	if got := len(dst[0].v.Queues()); got != 3 {
		t.Fatalf("restored %d queues, want 3", got)
	}
	if got := dst[0].b.Users().VHostLimit("/", auth.LimitMaxQueues); got != 3 {
		t.Fatalf("restored max-queues %d, want the snapshot's 3", got)
	}
}
