package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// lateMember is node 1's member of a fakeMeta whose next declare times
// out for its proposer although it commits later (commit).
type lateMember struct {
	f    *fakeMeta
	fail bool
	held []byte
}

func (m *lateMember) Propose(ctx context.Context, c broker.Command) error {
	enc := broker.EncodeCommand(c)
	if _, ok := unwrap(c).(broker.DeclareQueue); ok && m.fail {
		m.fail, m.held = false, enc
		return context.DeadlineExceeded
	}
	return (&retryMember{f: m.f}).commit(enc)
}

// An exclusive queue whose declare timed out for its client, whose
// connection then closed, and which committed afterwards (finding 9):
// its owner is gone and the delete of the connection's exclusive queues
// already ran, so it would stay locked to every connection until the node
// restarts. The node deletes it when it applies.
func TestMetaLateExclusiveDeclareDeleted(t *testing.T) {
	f := &fakeMeta{}
	m := &lateMember{f: f, fail: true}
	b1 := broker.New(broker.Config{Replication: broker.Replication{Node: 1, Metadata: m}})
	n2 := newClusterNode(f, 2, nil)
	f.nodes = append(f.nodes, b1, n2.b)
	v1 := b1.VHost("/")
	const conn = 7
	if _, err := v1.DeclareQueue(broker.QueueConfig{Name: "ex", Exclusive: true, AutoDelete: true, Owner: conn}, false, conn); err == nil {
		t.Fatal("the declare did not fail")
	}
	v1.DeleteExclusive(conn) // the connection closes
	if err := (&retryMember{f: f}).commit(m.held); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q1 := v1.QueueByID("ex", "")
		q2 := n2.v.QueueByID("ex", "")
		if q1 == nil && q2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the late exclusive queue of a closed connection is still there")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := v1.DeclareQueue(broker.QueueConfig{Name: "ex", Exclusive: true, Owner: 8}, false, 8); err != nil {
		t.Fatalf("declaring the name again: %v", err)
	}
}
