package broker

import (
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// setPolicyOn applies a policy command on the given nodes, as each node's
// metadata group would (at different moments).
func (c *qcluster) setPolicyOn(cmd Command, nodes ...int) {
	c.t.Helper()
	for _, n := range nodes {
		if err := c.bs[n-1].Apply(cmd); err != nil {
			c.t.Fatal(err)
		}
	}
	c.settle()
}

// A policy reaches a quorum queue's replicas as one config entry its
// leader proposes: every replica drops the same heads at the same index,
// and the settings are in the snapshot, so a replica restored from it
// agrees.
func TestQuorumPolicyAppliesThroughTheLog(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 3)
	dead := c.deadLetterQueues()
	qs := c.declare("q", nil)
	for i := range 10 {
		c.publish(1+i%3, "q", string(rune('a'+i)), message.Properties{}, nil, 0)
	}
	c.settle()
	wantCounts(t, qs, 10, 0, 0)
	pol := SetPolicy{Policy: Policy{VHost: "/", Name: "p", Pattern: "^q$", ApplyTo: ApplyQuorumQueues,
		Definition: map[string]any{"max-length": int64(3), "dead-letter-exchange": "dlx", "delivery-limit": int64(2)}}}
	// Followers first: nothing happens until the leader (node 1) applies it.
	c.setPolicyOn(pol, 2, 3)
	wantCounts(t, qs, 10, 0, 0)
	c.setPolicyOn(pol, 1)
	wantCounts(t, qs, 3, 0, 0)
	c.sameState(qs)
	if r, _, _ := dead[0].Counts(); r != 7 {
		t.Fatalf("the leader dead-lettered %d, want 7", r)
	}
	for i, q := range qs {
		m := q.backend.(*quorumBackend).m
		if m.cfg.maxLength != 3 || m.cfg.deliveryLimit != 2 || !m.cfg.hasDLX {
			t.Fatalf("node %d machine config %+v", i+1, m.cfg)
		}
	}
	snap, err := qs[1].backend.(*quorumBackend).Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	fresh := newQuorumMachine(quorumConfigOf(qs[1].args))
	if err := fresh.Restore(snap); err != nil || fresh.cfg != qs[1].backend.(*quorumBackend).m.cfg {
		t.Fatalf("restored config %+v (%v)", fresh.cfg, err)
	}
	// More publishes keep to the new limit on every replica.
	c.publish(2, "q", "x", message.Properties{}, nil, 0)
	c.settle()
	wantCounts(t, qs, 3, 0, 0)
	c.sameState(qs)
}

// A new leader proposes the settings its predecessor did not: a policy
// the old leader never applied reaches the machine when leadership moves.
func TestQuorumPolicyNewLeaderSyncs(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 2)
	qs := c.declare("q", nil)
	for range 5 {
		c.publish(1, "q", "m", message.Properties{}, nil, 0)
	}
	c.settle()
	c.setPolicyOn(SetPolicy{Policy: Policy{VHost: "/", Name: "p", Pattern: ".*", ApplyTo: ApplyQueues,
		Definition: map[string]any{"max-length": int64(2)}}}, 2)
	wantCounts(t, qs, 5, 0, 0)
	c.f.setLeader(2)
	c.settle()
	wantCounts(t, qs, 2, 0, 0)
	c.sameState(qs)
}

// The config entry round-trips and a corrupt one is refused.
func TestQuorumConfigCodec(t *testing.T) {
	t.Parallel()
	want := quorumConfig{ttl: 1500000000, hasTTL: true, maxLength: 7, maxBytes: -1, overflow: RejectPublish, deliveryLimit: -1, hasDLX: true}
	c := qcmd{kind: qcConfig, node: 3, ts: 9, conf: want}
	got, err := decodeQCmd(c.encode(nil))
	if err != nil || got.conf != want || got.kind != qcConfig {
		t.Fatalf("round trip %+v %v", got, err)
	}
	bad := c.encode(nil)
	bad[qcmdHeader] = 0xff
	if _, err := decodeQCmd(bad); err == nil {
		t.Fatal("a config with unknown flags decoded")
	}
	if _, err := decodeQCmd(c.encode(nil)[:qcmdHeader+5]); err == nil {
		t.Fatal("a short config decoded")
	}
}
