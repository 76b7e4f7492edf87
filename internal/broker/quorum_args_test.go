package broker

import (
	"strings"
	"testing"
)

// x-delivery-limit and x-quorum-initial-group-size are read by quorum
// queues only. A classic queue ignores them (as RabbitMQ ignores unknown
// x-arguments), so a durable classic queue an earlier Tern logged with any
// value restores and replays, and a redeclare differing only in them is
// equivalent.
func TestClassicQueueIgnoresQuorumArguments(t *testing.T) {
	t.Parallel()
	for _, args := range []map[string]any{
		{"x-delivery-limit": "5"},
		{"x-quorum-initial-group-size": int32(0)},
		{"x-quorum-initial-group-size": int32(-3), "x-queue-type": "classic"},
	} {
		def := QueueDef{VHost: "/", ID: "abc", QueueConfig: QueueConfig{Name: "q", Durable: true, Args: args}}
		b := New(Config{})
		if err := b.Restore(&Definitions{VHosts: []string{"/"}, Queues: []QueueDef{def}}); err != nil {
			t.Errorf("args %v: Restore: %v", args, err)
		} else if q := b.VHost("/").queue("q"); q == nil || q.Type() != Classic {
			t.Errorf("args %v: restored %v", args, q)
		}
		b2 := New(Config{})
		if err := b2.Replay([]Command{AddVHost{Name: "/"}, DeclareQueue{QueueDef: def}}); err != nil {
			t.Errorf("args %v: Replay: %v", args, err)
		} else if b2.VHost("/").queue("q") == nil {
			t.Errorf("args %v: Replay declared nothing", args)
		}
	}

	v := New(Config{}).VHost("/")
	if _, err := v.DeclareQueue(QueueConfig{Name: "c", Durable: true, Args: map[string]any{"x-delivery-limit": int32(5)}}, false, 1); err != nil {
		t.Fatal(err)
	}
	for _, args := range []map[string]any{nil, {"x-delivery-limit": int32(7)}, {"x-delivery-limit": "x", "x-quorum-initial-group-size": int32(0)}} {
		if _, err := v.DeclareQueue(QueueConfig{Name: "c", Durable: true, Args: args}, false, 1); err != nil {
			t.Errorf("classic redeclare with %v: %v", args, err)
		}
	}
	// A classic queue's other arguments are still compared.
	if _, err := v.DeclareQueue(QueueConfig{Name: "c", Durable: true, Args: map[string]any{"x-max-length": int32(1)}}, false, 1); err == nil ||
		!strings.Contains(err.Error(), "inequivalent arg 'x-max-length'") {
		t.Errorf("redeclare with another x-max-length: %v", err)
	}
}

// A quorum queue validates and compares them, whatever the order of the
// arguments in the table.
func TestQuorumQueueComparesQuorumArguments(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 1)
	v := c.bs[0].VHost("/")
	args := map[string]any{"x-queue-type": "quorum", "x-delivery-limit": int32(5)}
	if _, err := v.DeclareQueue(QueueConfig{Name: "q", Durable: true, Args: args}, false, 1); err != nil {
		t.Fatal(err)
	}
	if got := v.queue("q").args.quorum.deliveryLimit; got != 5 {
		t.Fatalf("delivery limit %d", got)
	}
	_, err := v.DeclareQueue(QueueConfig{Name: "q", Durable: true, Args: map[string]any{"x-queue-type": "quorum", "x-delivery-limit": int32(6)}}, false, 1)
	if err == nil || !strings.Contains(err.Error(), "inequivalent arg 'x-delivery-limit'") {
		t.Fatalf("quorum redeclare with another delivery limit: %v", err)
	}
}
