package broker_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

// retryMember is node 1's member of a fakeMeta whose proposals may commit
// twice, as the cluster's Propose re-proposes the same bytes after a
// proposal timeout although the first may still commit — later, after
// what other nodes did meanwhile (a delayed proposal reaching the leader
// after the retry committed). keep holds the last proposal's bytes for
// late to commit again.
type retryMember struct {
	f    *fakeMeta
	last []byte
}

func (m *retryMember) Propose(ctx context.Context, c broker.Command) error {
	m.last = broker.EncodeCommand(c)
	return m.commit(m.last)
}

func (m *retryMember) commit(enc []byte) error {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	m.f.log = append(m.f.log, enc)
	for _, b := range m.f.nodes {
		if err := applyEncoded(b, enc); err != nil {
			return err
		}
	}
	return nil
}

// late commits the last proposal's first copy, late.
func (m *retryMember) late(t *testing.T) {
	t.Helper()
	if err := m.commit(m.last); err != nil {
		t.Fatal(err)
	}
}

// A declare whose stale copy commits after another node deleted the
// queue must not bring it back, a bind's after an unbind must not bring
// the binding back, and a delete's after a redeclare must not delete the
// new exchange (finding 6): every node would hold what its client was told
// is gone, or lose what it was told exists.
func TestMetaRetriedProposalDoesNotUndo(t *testing.T) {
	f := &fakeMeta{}
	r := &retryMember{f: f}
	b1 := broker.New(broker.Config{Replication: broker.Replication{Node: 1, Metadata: r}})
	n2 := newClusterNode(f, 2, nil)
	f.nodes = append(f.nodes, b1, n2.b)
	v1 := b1.VHost("/")

	if _, err := v1.DeclareQueue(broker.QueueConfig{Name: "q"}, false, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.v.DeleteQueue("q", false, false, 0); err != nil {
		t.Fatal(err)
	}
	r.late(t)
	for i, b := range f.nodes {
		if q, _ := b.VHost("/").Queue("q", 0); q != nil {
			t.Fatalf("node %d: the deleted queue is back after a late copy of its declare", i+1)
		}
	}

	if _, err := n2.v.DeclareQueue(broker.QueueConfig{Name: "q2", Durable: true}, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := v1.BindQueue("q2", "amq.direct", "k", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := n2.v.UnbindQueue("q2", "amq.direct", "k", nil, 0); err != nil {
		t.Fatal(err)
	}
	r.late(t)
	for i, b := range f.nodes {
		if hasBinding(b.VHost("/"), "amq.direct", "q2", "k") {
			t.Fatalf("node %d: the unbound binding is back after a late copy of its bind", i+1)
		}
	}

	x := broker.ExchangeConfig{Name: "x", Type: "direct", Durable: true}
	if _, err := n2.v.DeclareExchange(x, false); err != nil {
		t.Fatal(err)
	}
	if err := v1.DeleteExchange("x", false); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.v.DeclareExchange(x, false); err != nil {
		t.Fatal(err)
	}
	r.late(t)
	for i, b := range f.nodes {
		if _, err := b.VHost("/").Exchange("x"); err != nil {
			t.Fatalf("node %d: the redeclared exchange is gone after a late copy of a delete: %v", i+1, err)
		}
	}
	sameEverywhere(t, []clusterNode{{b: b1, v: v1}, n2})
}

// A node that restores a snapshot skips the same late copies as the nodes
// that applied the log: the proposals applied last are in the snapshot.
func TestMetaSnapshotKeepsProposals(t *testing.T) {
	f := &fakeMeta{}
	r := &retryMember{f: f}
	b1 := broker.New(broker.Config{Replication: broker.Replication{Node: 1, Metadata: r}})
	n2 := newClusterNode(f, 2, nil)
	f.nodes = append(f.nodes, b1, n2.b)
	if _, err := b1.VHost("/").DeclareQueue(broker.QueueConfig{Name: "q"}, false, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.v.DeleteQueue("q", false, false, 0); err != nil {
		t.Fatal(err)
	}
	snap := snapshotOf(t, n2.b)
	b3 := broker.New(broker.Config{Replication: broker.Replication{Node: 3, Metadata: fakeMember{f: f, node: 3}}})
	if err := b3.RestoreDefinitions(snap); err != nil {
		t.Fatal(err)
	}
	f.nodes = append(f.nodes, b3)
	r.late(t)
	if q, _ := b3.VHost("/").Queue("q", 0); q != nil {
		t.Fatal("the restored node applied a late copy the others skipped")
	}
	if got := snapshotOf(t, b3); !bytes.Equal(got, snapshotOf(t, n2.b)) {
		t.Fatalf("restored node differs:\n%s\n%s", got, snapshotOf(t, n2.b))
	}
	// A snapshot without proposals (written before they existed) restores.
	plain, _ := broker.EncodeDefinitions(&broker.Definitions{VHosts: []string{"/"}})
	if err := broker.New(broker.Config{Replication: broker.Replication{Node: 4, Metadata: fakeMember{f: f, node: 4}}}).RestoreDefinitions(plain); err != nil {
		t.Fatal(err)
	}
}

// FuzzRestoreDefinitions: a metadata snapshot (the definitions document
// and the proposals after it) never panics the restore, and what restores
// snapshots to the same bytes again.
func FuzzRestoreDefinitions(f *testing.F) {
	b := broker.New(broker.Config{Replication: broker.Replication{Node: 1, Metadata: fakeMember{f: &fakeMeta{}, node: 1}}})
	_ = b.ApplyReplicated(broker.Proposed{ID: 5, Command: broker.AddVHost{Name: "v"}})
	_ = b.ApplyReplicated(broker.Proposed{ID: 6, Command: broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: "v", ID: "i", QueueConfig: broker.QueueConfig{Name: "q"}}}})
	seed, err := b.DefinitionsSnapshot()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"version":1}` + "\n" + `{"proposals":"AAAAAAAAAAE="}`))
	f.Add([]byte(`{"version":1}{"proposals":"AAA="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nb := func() *broker.Broker {
			return broker.New(broker.Config{Replication: broker.Replication{Node: 1, Metadata: fakeMember{f: &fakeMeta{}, node: 1}}})
		}
		b1 := nb()
		if err := b1.RestoreDefinitions(data); err != nil {
			return
		}
		s1, err := b1.DefinitionsSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		b2 := nb()
		if err := b2.RestoreDefinitions(s1); err != nil {
			t.Fatalf("a snapshot does not restore: %v\n%s", err, s1)
		}
		if s2, _ := b2.DefinitionsSnapshot(); !bytes.Equal(s1, s2) {
			t.Fatalf("restore does not round-trip:\n%s\n%s", s1, s2)
		}
	})
}
