package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/clock"
)

// Test doubles of a cluster's metadata group for the meta tests: brokers
// built with broker.New and memstore, joined by a MetadataLog that orders
// their proposals in one log and applies it to each with ApplyReplicated.

// fakeMeta is a metadata group for tests: one ordered log whose every
// proposal is encoded, decoded and applied to every member broker in log
// order, under one lock, before Propose returns — a cluster whose nodes
// are always caught up. before, when set, runs at the start of every
// proposal, outside the lock, so a test can hold one node's proposal back
// and let another's commit first.
type fakeMeta struct {
	mu     sync.Mutex
	nodes  []*broker.Broker // node id i+1
	log    [][]byte
	before func(node uint64, c broker.Command)
}

type fakeMember struct {
	f    *fakeMeta
	node uint64
}

func (m fakeMember) Propose(ctx context.Context, c broker.Command) error {
	if h := m.f.before; h != nil {
		h(m.node, unwrap(c))
	}
	enc := broker.EncodeCommand(c)
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.f.log = append(m.f.log, enc)
	for _, b := range m.f.nodes {
		if err := applyEncoded(b, enc); err != nil {
			return err
		}
	}
	return nil
}

// unwrap returns the command a proposal carries (broker.Proposed).
func unwrap(c broker.Command) broker.Command {
	if p, ok := c.(broker.Proposed); ok {
		return p.Command
	}
	return c
}

func applyEncoded(b *broker.Broker, enc []byte) error {
	c, err := broker.DecodeCommand(enc)
	if err != nil {
		return err
	}
	return b.ApplyReplicated(c)
}

// entries returns a copy of the log.
func (f *fakeMeta) entries() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

type clusterNode struct {
	b  *broker.Broker
	st *memstore.Store
	v  *broker.VHost
}

func newClusterNode(f *fakeMeta, id uint64, clk clock.Clock) clusterNode {
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st, Clock: clk,
		Replication: broker.Replication{Node: id, Metadata: fakeMember{f: f, node: id}}})
	return clusterNode{b: b, st: st, v: b.VHost("/")}
}

// newCluster starts n brokers (node ids 1…n) on one fakeMeta.
func newCluster(t *testing.T, n int, clk clock.Clock) (*fakeMeta, []clusterNode) {
	t.Helper()
	f := &fakeMeta{}
	nodes := make([]clusterNode, n)
	for i := range nodes {
		nodes[i] = newClusterNode(f, uint64(i+1), clk)
		f.nodes = append(f.nodes, nodes[i].b)
	}
	return f, nodes
}

func snapshotOf(t *testing.T, b *broker.Broker) []byte {
	t.Helper()
	s, err := b.DefinitionsSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameEverywhere checks that every node's snapshot is the first's.
func sameEverywhere(t *testing.T, nodes []clusterNode) []byte {
	t.Helper()
	want := snapshotOf(t, nodes[0].b)
	for i, n := range nodes[1:] {
		if got := snapshotOf(t, n.b); !bytes.Equal(got, want) {
			t.Fatalf("node %d's definitions differ from node 1's:\n%s\n%s", i+2, got, want)
		}
	}
	return want
}

// queueOn finds a queue by name, whoever owns it.
func queueOn(t *testing.T, n clusterNode, name string) *broker.Queue {
	t.Helper()
	for _, q := range n.v.Queues() {
		if q.Name() == name {
			return q
		}
	}
	t.Fatalf("no queue %s", name)
	return nil
}

// idOf returns a durable queue's id.
func idOf(t *testing.T, b *broker.Broker, name string) string {
	t.Helper()
	for _, q := range b.Definitions().Queues {
		if q.Name == name {
			return q.ID
		}
	}
	t.Fatalf("no durable queue %s", name)
	return ""
}

func hasBinding(v *broker.VHost, x, q, key string) bool {
	return slices.ContainsFunc(v.Bindings(), func(b broker.Binding) bool {
		return b.Source.Name() == x && b.Queue != nil && b.Queue.Name() == q && b.Key == key
	})
}

// asyncMeta is a metadata group whose nodes apply on goroutines of their
// own, each at its own pace, as a real cluster's do: Propose returns once
// the proposing node has applied the entry; the others may lag.
type asyncMeta struct {
	mu      sync.Mutex
	cond    *sync.Cond
	log     [][]byte
	applied []int
	nodes   []*broker.Broker
	stopped bool
	err     error // the first ApplyReplicated error: there must be none
	wg      sync.WaitGroup
}

type asyncMember struct {
	a    *asyncMeta
	node int
}

func (m asyncMember) Propose(_ context.Context, c broker.Command) error {
	a := m.a
	a.mu.Lock()
	defer a.mu.Unlock()
	a.log = append(a.log, broker.EncodeCommand(c))
	idx := len(a.log)
	a.cond.Broadcast()
	for a.applied[m.node-1] < idx && !a.stopped {
		a.cond.Wait()
	}
	if a.stopped {
		return errors.New("asyncMeta: stopped")
	}
	return nil
}

func (a *asyncMeta) apply(i int) {
	defer a.wg.Done()
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		for a.applied[i] == len(a.log) && !a.stopped {
			a.cond.Wait()
		}
		if a.stopped {
			return
		}
		e := a.log[a.applied[i]]
		a.mu.Unlock()
		err := applyEncoded(a.nodes[i], e)
		a.mu.Lock()
		if err != nil && a.err == nil {
			a.err = fmt.Errorf("node %d: %w", i+1, err)
		}
		a.applied[i]++
		a.cond.Broadcast()
	}
}

// caughtUp waits until every node applied the whole log and returns the
// first error any apply returned.
func (a *asyncMeta) caughtUp() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for slices.Min(a.applied) < len(a.log) {
		a.cond.Wait()
	}
	return a.err
}

func newAsyncCluster(t *testing.T, n int) (*asyncMeta, []clusterNode) {
	t.Helper()
	a := &asyncMeta{applied: make([]int, n)}
	a.cond = sync.NewCond(&a.mu)
	nodes := make([]clusterNode, n)
	for i := range nodes {
		st := memstore.New()
		b := broker.New(broker.Config{Storage: st,
			Replication: broker.Replication{Node: uint64(i + 1), Metadata: asyncMember{a: a, node: i + 1}}})
		nodes[i] = clusterNode{b: b, st: st, v: b.VHost("/")}
		a.nodes = append(a.nodes, b)
	}
	for i := range nodes {
		a.wg.Add(1)
		go a.apply(i)
	}
	t.Cleanup(func() {
		a.mu.Lock()
		a.stopped = true
		a.cond.Broadcast()
		a.mu.Unlock()
		a.wg.Wait()
	})
	return a, nodes
}
