package cluster

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
)

// TestProposeReturnsOnceEveryNodeApplied: a definition change is answered
// only once every live member applied it, however slowly one of them
// applies: a client told its queue exists publishes through any node and
// must find it there (visible.go).
func TestProposeReturnsOnceEveryNodeApplied(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx := t.Context()
	for i, tn := range nodes {
		slow := nodes[(i+1)%3]
		slow.broker.mu.Lock()
		slow.broker.slow = 300 * time.Millisecond
		slow.broker.mu.Unlock()
		name := fmt.Sprintf("slow-%d", i)
		start := time.Now()
		if err := tn.node.Propose(ctx, broker.AddVHost{Name: name}); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		for _, other := range nodes {
			if !slices.Contains(other.broker.VHosts(), name) {
				t.Fatalf("Propose of %s on %s returned after %v, before %s applied it", name, tn.cfg.Self.Name, took, other.cfg.Self.Name)
			}
		}
		slow.broker.mu.Lock()
		slow.broker.slow = 0
		slow.broker.mu.Unlock()
	}
}

// TestProposeDoesNotWaitForADownNode: with one member stopped, a change
// commits on the other two and is answered without waiting visibleWait
// for the dead one.
func TestProposeDoesNotWaitForADownNode(t *testing.T) {
	nodes := newTestNodes(t, 3)
	startAll(t, nodes)
	ctx := t.Context()
	_ = nodes[2].node.Close()
	// The survivors stop counting it live after an election timeout; if it
	// led, they elect one of themselves first (not what this test times).
	gone := raftnode.NodeID(nodes[2].cfg.Self.ID)
	waitUntil(t, 15*time.Second, "a survivor leading and neither counting n3 live", func() bool {
		for _, tn := range nodes[:2] {
			g := tn.node.meta.Load()
			if l := g.Status().Leader; l == 0 || l == gone || g.Live(gone) {
				return false
			}
		}
		return true
	})
	for i := range 3 {
		start := time.Now()
		if err := nodes[i%2].node.Propose(ctx, broker.AddVHost{Name: fmt.Sprintf("v%d", i)}); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took >= visibleWait {
			t.Fatalf("Propose took %v with a member down", took)
		}
	}
}

func TestHandleMetaAppliedRefusesMalformedBodies(t *testing.T) {
	nodes := newTestNodes(t, 1)
	startAll(t, nodes)
	n := nodes[0].node
	for _, body := range [][]byte{nil, {0x80}, binary.AppendUvarint([]byte{}, 1<<40)[:2], append(binary.AppendUvarint(nil, 1), 0)} {
		if _, err := n.handleMetaApplied(t.Context(), body); err == nil {
			t.Fatalf("body %x accepted", body)
		}
	}
	if _, err := n.handleMetaApplied(t.Context(), binary.AppendUvarint(nil, 1)); err != nil {
		t.Fatalf("index 1, applied: %v", err)
	}
}

// FuzzDecodeMetaApplied: any body decodes to an index or an error, and
// every index round-trips.
func FuzzDecodeMetaApplied(f *testing.F) {
	for _, seed := range [][]byte{nil, {0}, {1}, {0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {1, 0}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		index, err := decodeMetaApplied(body)
		if err != nil {
			return
		}
		if got, err := decodeMetaApplied(binary.AppendUvarint(nil, index)); err != nil || got != index {
			t.Fatalf("index %d: round trip %d %v", index, got, err)
		}
	})
}
