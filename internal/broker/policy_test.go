package broker_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

func setPolicy(t *testing.T, b *broker.Broker, p broker.Policy, operator bool) {
	t.Helper()
	if p.VHost == "" {
		p.VHost = "/"
	}
	if err := b.SetPolicy(p, operator); err != nil {
		t.Fatalf("set policy %s: %v", p.Name, err)
	}
}

func fill(t *testing.T, v *broker.VHost, q string, n int) {
	t.Helper()
	for i := range n {
		send(t, v, "", q, fmt.Sprint(i), message.Properties{})
	}
}

// A max-length policy set on a queue holding 100 messages drops the 90
// oldest at once (drop-head), as RabbitMQ does when a policy lowers the
// limit; clearing it lets the queue grow again.
func TestPolicyMaxLengthAppliesToExistingQueue(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "q"})
	fill(t, v, "q", 100)
	setPolicy(t, b, broker.Policy{Name: "cap", Pattern: "^q$", ApplyTo: "queues", Definition: map[string]any{"max-length": 10.0}}, false)
	if c := counts(q); c[0] != 10 {
		t.Fatalf("ready after max-length 10: %d", c[0])
	}
	if got := q.Policy(); got.Policy != "cap" || got.EffectiveDefinition["max-length"] != int64(10) {
		t.Fatalf("queue policy %+v", got)
	}
	if err := b.ClearPolicy("/", "cap", false); err != nil {
		t.Fatal(err)
	}
	fill(t, v, "q", 5)
	got := drain(q)
	if len(got) != 15 || got[0] != "90" {
		t.Fatalf("after clearing: %d messages, first %v", len(got), got[:1])
	}
	if p := q.Policy(); p.Policy != "" {
		t.Fatalf("cleared policy still shown: %+v", p)
	}
}

// The matching policy of the highest priority applies, ties go to the
// first name, apply-to selects the kinds, and clearing the winner hands
// the queue to the next.
func TestPolicyPriorityAndApplyTo(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "orders.eu"})
	setPolicy(t, b, broker.Policy{Name: "low", Pattern: "^orders", Priority: 1, Definition: map[string]any{"max-length": 7}}, false)
	setPolicy(t, b, broker.Policy{Name: "high", Pattern: "\\.eu$", Priority: 5, Definition: map[string]any{"max-length": 3}}, false)
	setPolicy(t, b, broker.Policy{Name: "ex", Pattern: ".*", Priority: 99, ApplyTo: "exchanges", Definition: map[string]any{"alternate-exchange": "ae"}}, false)
	setPolicy(t, b, broker.Policy{Name: "streams", Pattern: ".*", Priority: 99, ApplyTo: "streams", Definition: map[string]any{"max-age": "1D"}}, false)
	if p := q.Policy().Policy; p != "high" {
		t.Fatalf("policy %q, want high", p)
	}
	fill(t, v, "orders.eu", 10)
	if c := counts(q); c[0] != 3 {
		t.Fatalf("ready %d, want 3", c[0])
	}
	if err := b.ClearPolicy("/", "high", false); err != nil {
		t.Fatal(err)
	}
	if p := q.Policy().Policy; p != "low" {
		t.Fatalf("after clearing high: %q", p)
	}
	// Equal priorities: the first name wins, whatever the order of setting.
	setPolicy(t, b, broker.Policy{Name: "b-tie", Pattern: "orders", Priority: 1, Definition: map[string]any{"max-length": 9}}, false)
	setPolicy(t, b, broker.Policy{Name: "a-tie", Pattern: "orders", Priority: 1, Definition: map[string]any{"max-length": 8}}, false)
	if p := q.Policy().Policy; p != "a-tie" {
		t.Fatalf("tie went to %q, want a-tie", p)
	}
	x, _ := v.Exchange("amq.direct")
	if x.Policy() != "ex" {
		t.Fatalf("exchange policy %q", x.Policy())
	}
}

// A declared argument meets a policy by RabbitMQ's rules: the lower
// max-length wins; the declared overflow and dead-letter exchange win on
// a classic queue.
func TestPolicyArgumentPrecedence(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	declare(t, v, broker.QueueConfig{Name: "dlq-arg"})
	declare(t, v, broker.QueueConfig{Name: "dlq-pol"})
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int32(5), "x-overflow": "reject-publish",
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq-arg"}})
	setPolicy(t, b, broker.Policy{Name: "p", Pattern: "^q$", Definition: map[string]any{"max-length": 10, "overflow": "drop-head",
		"dead-letter-exchange": "amq.direct", "dead-letter-routing-key": "dlq-pol"}}, false)
	for i := range 8 {
		res := send(t, v, "", "q", fmt.Sprint(i), message.Properties{})
		if want := i >= 5; res.Rejected != want {
			t.Fatalf("message %d rejected=%v: the declared reject-publish and the lower max-length 5 must hold", i, res.Rejected)
		}
	}
	setPolicy(t, b, broker.Policy{Name: "p", Pattern: "^q$", Definition: map[string]any{"max-length": 2}}, false)
	if c := counts(q); c[0] != 5 {
		t.Fatalf("reject-publish queue dropped heads on a lower limit: %d ready", c[0])
	}
	if res := send(t, v, "", "q", "x", message.Properties{}); !res.Rejected {
		t.Fatal("a publish over the policy's lower limit was accepted")
	}
}

// An operator policy caps a policy: the lower of policy, operator policy
// and argument wins.
func TestOperatorPolicyCaps(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	q := declare(t, v, broker.QueueConfig{Name: "q", Args: map[string]any{"x-max-length": int64(50)}})
	setPolicy(t, b, broker.Policy{Name: "user", Pattern: ".*", Definition: map[string]any{"max-length": 100, "message-ttl": 60000}}, false)
	setPolicy(t, b, broker.Policy{Name: "cap", Pattern: ".*", ApplyTo: "queues", Definition: map[string]any{"max-length": 20, "message-ttl": 90000}}, true)
	fill(t, v, "q", 30)
	if c := counts(q); c[0] != 20 {
		t.Fatalf("ready %d, want the operator's 20", c[0])
	}
	p := q.Policy()
	want := map[string]any{"max-length": int64(20), "message-ttl": int64(60000)}
	if p.Policy != "user" || p.OperatorPolicy != "cap" || !reflect.DeepEqual(p.EffectiveDefinition, want) {
		t.Fatalf("policy %+v", p)
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "bad", Pattern: ".*", Definition: map[string]any{"overflow": "drop-head"}}, true); err == nil {
		t.Fatal("an operator policy took overflow, which RabbitMQ's operator policies do not")
	}
}

// Bad definitions are refused with a reason naming the key.
func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	for _, tc := range []struct {
		def  map[string]any
		want string
	}{
		{map[string]any{"max-lenght": 10}, "max-lenght"},
		{map[string]any{"max-length": "10"}, "maximum length"},
		{map[string]any{"max-length": 1.5}, "maximum length"},
		{map[string]any{"message-ttl": -1}, "message TTL"},
		{map[string]any{"expires": 0}, "expiry"},
		{map[string]any{"overflow": "drop-tail"}, "overflow"},
		{map[string]any{"dead-letter-exchange": 5}, "dead-letter-exchange"},
		{map[string]any{"queue-mode": "eager"}, "queue-mode"},
		{map[string]any{"queue-version": 3}, "queue-version"},
		{map[string]any{"queue-version": "2"}, "queue-version"},
		{map[string]any{"max-age": "7W"}, "max age"},
		{map[string]any{"deliver-rate": 0}, "deliver-rate"},
		{map[string]any{"publish-rate": "fast"}, "publish-rate"},
		{map[string]any{}, "empty"},
	} {
		err := b.SetPolicy(broker.Policy{VHost: "/", Name: "p", Pattern: ".*", Definition: tc.def}, false)
		var pe *broker.PolicyError
		if !errors.As(err, &pe) || !strings.Contains(pe.Reason, tc.want) {
			t.Errorf("definition %v: error %v, want a PolicyError naming %q", tc.def, err, tc.want)
		}
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "p", Pattern: "(", Definition: map[string]any{"max-length": 1}}, false); err == nil {
		t.Error("a bad pattern was accepted")
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "p", Pattern: ".*", ApplyTo: "topics", Definition: map[string]any{"max-length": 1}}, false); err == nil {
		t.Error("a bad apply-to was accepted")
	}
	if err := b.SetPolicy(broker.Policy{VHost: "nope", Name: "p", Pattern: ".*", Definition: map[string]any{"max-length": 1}}, false); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("unknown vhost: %v", err)
	}
	if len(b.Policies("", false)) != 0 {
		t.Fatal("a refused policy was stored")
	}
}

// RabbitMQ 3.10-3.13's queue-version (1 or 2) is accepted, as queue-mode
// is, so that their definitions import; it has no effect (one format), and
// an operator policy may not set it, as in RabbitMQ.
func TestPolicyQueueVersionAcceptedWithoutEffect(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	for _, v := range []any{1, 2, float64(2)} {
		if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "cqv2", Pattern: ".*", Definition: map[string]any{"queue-version": v, "max-length": 5}}, false); err != nil {
			t.Fatalf("queue-version %v: %v", v, err)
		}
	}
	q := declare(t, b.VHost("/"), broker.QueueConfig{Name: "q"})
	if p := q.Policy(); p.Policy != "cqv2" || !reflect.DeepEqual(p.EffectiveDefinition, map[string]any{"max-length": int64(5), "queue-version": int64(2)}) {
		t.Fatalf("policy %+v, want cqv2 applied (shown, as RabbitMQ shows it)", p)
	}
	if err := b.SetPolicy(broker.Policy{VHost: "/", Name: "op", Pattern: ".*", Definition: map[string]any{"queue-version": 2}}, true); err == nil {
		t.Fatal("an operator policy took queue-version")
	}
}

// A dead-letter exchange given by a policy takes the heads a max-length
// drops, and the messages a message-ttl policy expires.
func TestPolicyDeadLetterAndTTL(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	b := broker.New(broker.Config{Clock: clk})
	v := b.VHost("/")
	dlq := declare(t, v, broker.QueueConfig{Name: "dlq"})
	q := declare(t, v, broker.QueueConfig{Name: "work"})
	fill(t, v, "work", 4)
	setPolicy(t, b, broker.Policy{Name: "dlx", Pattern: "^work$", Definition: map[string]any{
		"dead-letter-exchange": "", "dead-letter-routing-key": "dlq", "max-length": 3, "message-ttl": 1000}}, false)
	if c := counts(dlq); c[0] != 1 {
		t.Fatalf("dead-lettered by the lower max-length: %d", c[0])
	}
	// The TTL applies to messages enqueued from now on; the three already
	// there keep theirs (none).
	send(t, v, "", "work", "new", message.Properties{})
	if c := counts(q); c[0] != 3 {
		t.Fatalf("work ready %d", c[0])
	}
	clk.Advance(1001 * time.Millisecond)
	got := drain(q)
	if !slices.Equal(got, []string{"2", "3"}) {
		t.Fatalf("work after the TTL: %v (max-length dropped 1, the new message expired)", got)
	}
	d := drain(dlq)
	if !slices.Equal(d, []string{"0", "1", "new"}) {
		t.Fatalf("dead letters %v", d)
	}
}

// Policies are definitions: a restart restores them and the queues they
// apply to.
func TestPolicySurvivesRestart(t *testing.T) {
	t.Parallel()
	st := memstore.New()
	b := broker.New(broker.Config{Storage: st})
	v := b.VHost("/")
	declare(t, v, broker.QueueConfig{Name: "q", Durable: true})
	setPolicy(t, b, broker.Policy{Name: "cap", Pattern: "^q", Definition: map[string]any{"max-length": 2}}, false)
	setPolicy(t, b, broker.Policy{Name: "op", Pattern: "^q", ApplyTo: "queues", Definition: map[string]any{"message-ttl": 5000}}, true)
	setPolicy(t, b, broker.Policy{Name: "gone", Pattern: "x", Definition: map[string]any{"expires": 5000}}, false)
	if err := b.ClearPolicy("/", "gone", false); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		b = broker.New(broker.Config{Storage: st})
		if err := b.Restore(st.Definitions()); err != nil {
			t.Fatal(err)
		}
		if err := b.Replay(st.Commands()); err != nil {
			t.Fatal(err)
		}
		v = b.VHost("/")
		q := mustQueue(t, v, "q")
		if p := q.Policy(); p.Policy != "cap" || p.OperatorPolicy != "op" {
			t.Fatalf("round %d: policy after restart %+v", round, p)
		}
		fill(t, v, "q", 5)
		if c := counts(q); c[0] != 2 {
			t.Fatalf("round %d: ready %d after restart, want the policy's 2", round, c[0])
		}
		drain(q)
		if err := st.SaveDefinitions(b.Definitions()); err != nil { // the second round restores from a snapshot
			t.Fatal(err)
		}
	}
}

// The command codec round-trips policy commands, numbers included.
func TestPolicyCommandCodec(t *testing.T) {
	t.Parallel()
	for _, c := range []broker.Command{
		broker.SetPolicy{Policy: broker.Policy{VHost: "/", Name: "p", Pattern: "^a", ApplyTo: "queues", Priority: 3,
			Definition: map[string]any{"max-length": int64(10), "deliver-rate": 2.5, "overflow": "reject-publish"}}},
		broker.SetPolicy{Operator: true, Policy: broker.Policy{VHost: "v", Name: "o", Pattern: ".*", ApplyTo: "all",
			Definition: map[string]any{"expires": int64(1)}}},
		broker.ClearPolicy{VHost: "/", Name: "p"},
		broker.ClearPolicy{Operator: true, VHost: "/", Name: "o"},
	} {
		got, err := broker.DecodeCommand(broker.EncodeCommand(c))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip of %#v: %#v, %v", c, got, err)
		}
	}
	d := &broker.Definitions{VHosts: []string{"/"}, Policies: []broker.Policy{{VHost: "/", Name: "p", Pattern: "x", ApplyTo: "all",
		Definition: map[string]any{"max-length": int64(1)}}}}
	raw, err := broker.EncodeDefinitions(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := broker.DecodeDefinitions(raw)
	if err != nil || !reflect.DeepEqual(back.Policies, d.Policies) {
		t.Fatalf("definitions round trip: %#v %v", back.Policies, err)
	}
}

// A publish-rate policy holds publishers to the queue's rate: each
// message beyond the bucket's burst tells its publisher to wait its turn.
// A deliver-rate policy paces deliveries as x-deliver-rate does.
func TestPolicyRates(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	b := broker.New(broker.Config{Clock: clk})
	v := b.VHost("/")
	declare(t, v, broker.QueueConfig{Name: "slow"})
	setPolicy(t, b, broker.Policy{Name: "rate", Pattern: "^slow$", Definition: map[string]any{"publish-rate": 10.0}}, false)
	var holds []time.Duration
	for range 3 {
		holds = append(holds, send(t, v, "", "slow", "m", message.Properties{}).Hold)
	}
	if holds[0] != 0 || holds[1] != 100*time.Millisecond || holds[2] != 200*time.Millisecond {
		t.Fatalf("holds %v, want 0, 100ms, 200ms", holds)
	}
	if err := b.ClearPolicy("/", "rate", false); err != nil {
		t.Fatal(err)
	}
	if h := send(t, v, "", "slow", "m", message.Properties{}).Hold; h != 0 {
		t.Fatalf("hold %v without a publish-rate", h)
	}

	q := declare(t, v, broker.QueueConfig{Name: "paced"})
	setPolicy(t, b, broker.Policy{Name: "pace", Pattern: "^paced$", Definition: map[string]any{"deliver-rate": 10}}, false)
	fill(t, v, "paced", 5)
	c := newTaker(-1)
	if err := q.Consume(c, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.deliveries()); n != 1 {
		t.Fatalf("%d delivered at once at 10/s, want 1", n)
	}
	clk.Advance(100 * time.Millisecond)
	if n := len(c.deliveries()); n != 2 {
		t.Fatalf("%d delivered after 100ms at 10/s, want 2", n)
	}
}

// An exchange policy's alternate-exchange takes what its exchange cannot
// route; a declared alternate-exchange argument wins over it.
func TestPolicyAlternateExchange(t *testing.T) {
	t.Parallel()
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	for _, x := range []broker.ExchangeConfig{{Name: "ae", Type: "fanout"}, {Name: "ae2", Type: "fanout"}, {Name: "in", Type: "direct"},
		{Name: "own", Type: "direct", Args: map[string]any{"alternate-exchange": "ae2"}}} {
		if _, err := v.DeclareExchange(x, false); err != nil {
			t.Fatal(err)
		}
	}
	unrouted := declare(t, v, broker.QueueConfig{Name: "unrouted"})
	own := declare(t, v, broker.QueueConfig{Name: "own-unrouted"})
	if err := v.BindQueue("unrouted", "ae", "", nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := v.BindQueue("own-unrouted", "ae2", "", nil, 1); err != nil {
		t.Fatal(err)
	}
	send(t, v, "in", "nowhere", "before", message.Properties{})
	setPolicy(t, b, broker.Policy{Name: "ae", Pattern: "^(in|own)$", ApplyTo: "exchanges", Definition: map[string]any{"alternate-exchange": "ae"}}, false)
	send(t, v, "in", "nowhere", "after", message.Properties{})
	send(t, v, "own", "nowhere", "own", message.Properties{})
	if got := drain(unrouted); !slices.Equal(got, []string{"after"}) {
		t.Fatalf("alternate exchange by policy got %v", got)
	}
	if got := drain(own); !slices.Equal(got, []string{"own"}) {
		t.Fatalf("the declared alternate-exchange lost to the policy: %v", got)
	}
	if q := unrouted.Policy(); q.Policy != "" {
		t.Fatalf("an exchanges policy applied to a queue: %+v", q)
	}
}

// A stream takes its segment size from a policy when its log opens, and
// a retention policy set later trims an existing stream at its next
// retention pass; the policy wins over the declared x-max-length-bytes.
func TestPolicyStreamRetention(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	b := broker.New(broker.Config{Storage: memstore.New(), Clock: clk})
	v := b.VHost("/")
	setPolicy(t, b, broker.Policy{Name: "seg", Pattern: "^s$", ApplyTo: "streams", Definition: map[string]any{"stream-max-segment-size-bytes": 10}}, false)
	s := declare(t, v, broker.QueueConfig{Name: "s", Durable: true, Args: map[string]any{"x-queue-type": "stream", "x-max-length-bytes": int64(1 << 20)}})
	body := strings.Repeat("x", 10) // one message a segment
	for range 10 {
		send(t, v, "", "s", body, persistent)
	}
	waitFor(t, 5*time.Second, "10 messages in the stream", func() bool { r, _, _ := s.Counts(); return r == 10 })
	setPolicy(t, b, broker.Policy{Name: "seg", Pattern: "^s$", ApplyTo: "streams", Definition: map[string]any{
		"stream-max-segment-size-bytes": 10, "max-length-bytes": 30}}, false)
	clk.Advance(2 * time.Second) // the next write runs a retention pass
	send(t, v, "", "s", body, persistent)
	waitFor(t, 5*time.Second, "retention down to the policy's 30 bytes", func() bool { r, _, _ := s.Counts(); return r <= 4 })
}
