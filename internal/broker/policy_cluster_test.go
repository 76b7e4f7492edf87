package broker_test

import (
	"bytes"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

// In a cluster a policy set on one node is proposed to the metadata group
// and applied on every node before SetPolicy returns; the metadata
// snapshot carries policies, and restoring one clears a node's policies
// the snapshot does not have.
func TestClusterPoliciesReplicate(t *testing.T) {
	t.Parallel()
	f, nodes := newCluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	declare(t, n1.v, broker.QueueConfig{Name: "jobs", Durable: true})
	if err := n2.b.SetPolicy(broker.Policy{VHost: "/", Name: "cap", Pattern: "^jobs$", Definition: map[string]any{"max-length": 4}}, false); err != nil {
		t.Fatal(err)
	}
	if err := n3.b.SetPolicy(broker.Policy{VHost: "/", Name: "op", Pattern: ".*", ApplyTo: "queues", Definition: map[string]any{"expires": 60000}}, true); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if p := queueOn(t, n, "jobs").Policy(); p.Policy != "cap" || p.OperatorPolicy != "op" {
			t.Fatalf("node %d: queue policy %+v", i+1, p)
		}
	}
	fill(t, n1.v, "jobs", 9) // node 1 holds the classic queue's messages
	if c := counts(queueOn(t, n1, "jobs")); c[0] != 4 {
		t.Fatalf("ready %d on the queue's node, want 4", c[0])
	}
	snap := sameEverywhere(t, nodes)
	if !bytes.Contains(snap, []byte(`"operator_policies"`)) {
		t.Fatalf("the metadata snapshot has no operator policies:\n%s", snap)
	}

	// A node that went its own way gets the snapshot's policies, and
	// loses its own.
	h := &fakeMeta{}
	other := newClusterNode(h, 5, nil)
	h.nodes = []*broker.Broker{other.b}
	if err := other.b.SetPolicy(broker.Policy{VHost: "/", Name: "stray", Pattern: ".*", Definition: map[string]any{"max-length": 1}}, false); err != nil {
		t.Fatal(err)
	}
	if err := other.b.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	if got := snapshotOf(t, other.b); !bytes.Equal(got, snap) {
		t.Fatalf("restored definitions differ:\n%s\n%s", got, snap)
	}
	// Clearing replicates too, and the whole log replays over the snapshot.
	if err := n1.b.ClearPolicy("/", "cap", false); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		if p := queueOn(t, n, "jobs").Policy(); p.Policy != "" {
			t.Fatalf("node %d kept a cleared policy: %+v", i+1, p)
		}
	}
	for _, e := range f.entries() {
		if err := applyEncoded(other.b, e); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := snapshotOf(t, other.b), sameEverywhere(t, nodes); !bytes.Equal(got, want) {
		t.Fatalf("replayed log differs:\n%s\n%s", got, want)
	}
}
