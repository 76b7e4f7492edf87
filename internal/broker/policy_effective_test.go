package broker

import (
	"testing"
	"time"
)

// effectiveArgs follows RabbitMQ's per-key, per-type rules (the table in
// policy_effective.go).
func TestEffectiveArgsRules(t *testing.T) {
	t.Parallel()
	mk := func(t QueueType, args map[string]any) (queueArgs, map[string]any) {
		a, err := parseQueueArgs("q", "/", args)
		if err != nil {
			panic(err)
		}
		a.queueType = t
		return a, args
	}
	def := func(m map[string]any) policyDef {
		d, _, err := parsePolicyDefinition(m, false)
		if err != nil {
			panic(err)
		}
		return d
	}
	// Classic: lower of the numbers; the argument's overflow and DLX.
	a, raw := mk(Classic, map[string]any{"x-message-ttl": int32(500), "x-max-length": int32(50), "x-overflow": "reject-publish", "x-dead-letter-exchange": "arg"})
	e := effectiveArgs(a, raw, Classic, def(map[string]any{"message-ttl": 1000, "max-length": 10, "max-length-bytes": 99, "expires": 7000,
		"overflow": "drop-head", "dead-letter-exchange": "pol", "dead-letter-routing-key": "rk", "delivery-limit": 3, "max-age": "1D"}))
	if e.messageTTL != 500*time.Millisecond || e.maxLength != 10 || e.maxBytes != 99 || e.expires != 7*time.Second ||
		e.overflow != RejectPublish || e.dlx != "arg" || e.dlrk != "rk" || !e.hasDLRK || e.maxAge != 0 || e.quorum != a.quorum {
		t.Fatalf("classic %+v", e)
	}
	// Quorum: the policy's overflow wins; delivery-limit lower, a limit
	// beats unlimited; reject-publish-dlx is not a quorum queue's.
	a, raw = mk(Quorum, map[string]any{"x-overflow": "reject-publish", "x-delivery-limit": int32(-1), "x-max-length-bytes": int64(10)})
	e = effectiveArgs(a, raw, Quorum, def(map[string]any{"overflow": "drop-head", "delivery-limit": 5, "max-length-bytes": 20}))
	if e.overflow != DropHead || e.quorum.deliveryLimit != 5 || e.maxBytes != 10 {
		t.Fatalf("quorum %+v", e)
	}
	e = effectiveArgs(a, raw, Quorum, def(map[string]any{"overflow": "reject-publish-dlx"}))
	if e.overflow != DropHead {
		t.Fatalf("quorum reject-publish-dlx became %v", e.overflow)
	}
	a, raw = mk(Quorum, nil)
	if e = effectiveArgs(a, raw, Quorum, def(map[string]any{"delivery-limit": 2})); e.quorum.deliveryLimit != 2 {
		t.Fatalf("quorum default delivery limit kept: %+v", e.quorum)
	}
	// Stream: the policy wins for retention and segment size.
	a, raw = mk(Stream, map[string]any{"x-max-length-bytes": int64(1000), "x-max-age": "1D", "x-stream-max-segment-size-bytes": int64(500)})
	e = effectiveArgs(a, raw, Stream, def(map[string]any{"max-length-bytes": 5000, "max-age": "2h", "stream-max-segment-size-bytes": 9000, "max-length": 1}))
	if e.maxBytes != 5000 || e.maxAge != 2*time.Hour || e.segmentSize != 9000 || e.maxLength != -1 {
		t.Fatalf("stream %+v", e)
	}
	// Operator policies: the lower wins; an operator's limit caps an
	// unlimited delivery-limit.
	p := &compiledPolicy{def: def(map[string]any{"max-length": 100, "delivery-limit": -1, "overflow": "reject-publish"})}
	op := &compiledPolicy{def: def(map[string]any{"max-length": 10, "delivery-limit": 4, "message-ttl": 9})}
	m := mergePolicies(p, op)
	if m.maxLength.v != 10 || m.deliveryLimit.v != 4 || m.messageTTL.v != 9 || m.overflow.v != RejectPublish {
		t.Fatalf("merged %+v", m)
	}
}
