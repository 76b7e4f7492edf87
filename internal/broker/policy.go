package broker

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Policies, as RabbitMQ has them (https://www.rabbitmq.com/docs/policies):
// a vhost's named rule that gives every queue or exchange whose name
// matches its pattern a set of optional arguments (its definition), at
// run time, to existing objects as well as new ones. An object takes one
// policy, the matching one of the highest priority, and one operator
// policy, whose numeric keys cap the policy's (the lower wins). How the
// result meets the arguments a client declared depends on the key and the
// queue type, exactly as in RabbitMQ (policy_effective.go). Policies are
// definitions like queues: changed by commands (SetPolicy, ClearPolicy),
// logged, snapshotted and, in a cluster, replicated by the metadata group.

// Policy is a policy or an operator policy, in RabbitMQ's JSON shape.
// Definition values are JSON's: numbers, strings; ValidatePolicy turns
// integral numbers into int64.
type Policy struct {
	VHost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// What a policy applies to: RabbitMQ's apply-to values.
const (
	ApplyQueues        = "queues" // every queue type, streams included (RabbitMQ 3.12+)
	ApplyClassicQueues = "classic_queues"
	ApplyQuorumQueues  = "quorum_queues"
	ApplyStreams       = "streams"
	ApplyExchanges     = "exchanges"
	ApplyAll           = "all"
)

// policyKeys are the definition keys a policy may set, and whether an
// operator policy may set them too (RabbitMQ's operator_policy_validator
// keys, plus Tern's two rates).
var policyKeys = map[string]bool{
	"message-ttl": true, "expires": true, "max-length": true, "max-length-bytes": true, "delivery-limit": true,
	"overflow": false, "dead-letter-exchange": false, "dead-letter-routing-key": false, "queue-mode": false,
	"queue-version": false, "max-age": false, "stream-max-segment-size-bytes": false, "alternate-exchange": false,
	"deliver-rate": true, "publish-rate": true,
}

// opt is a definition value that may be absent.
type opt[T any] struct {
	v  T
	ok bool
}

func some[T any](v T) opt[T] { return opt[T]{v, true} }

// policyDef is a validated definition.
type policyDef struct {
	messageTTL, expires, maxLength, maxBytes opt[int64]
	deliveryLimit, segmentSize               opt[int64]
	overflow                                 opt[Overflow]
	dlx, dlrk, alternate, queueMode          opt[string]
	maxAge                                   opt[time.Duration]
	deliverRate, publishRate                 opt[float64]
}

// compiledPolicy is a policy as the vhost keeps it.
type compiledPolicy struct {
	Policy
	re  *regexp.Regexp
	def policyDef
}

// PolicyError is a policy refused for its content: the HTTP API answers
// 400 with Reason.
type PolicyError struct{ Reason string }

func (e *PolicyError) Error() string { return e.Reason }

func policyErrorf(format string, args ...any) error {
	return &PolicyError{Reason: "Validation failed\n\n" + fmt.Sprintf(format, args...)}
}

// ValidatePolicy checks p as a policy (operator false) or an operator
// policy and returns it normalised: apply-to defaulted to "all" (RabbitMQ's
// default), integral numbers as int64. The error is a *PolicyError naming
// what is wrong.
func ValidatePolicy(p Policy, operator bool) (Policy, error) {
	_, err := compilePolicy(&p, operator)
	return p, err
}

func compilePolicy(p *Policy, operator bool) (*compiledPolicy, error) {
	if p.Name == "" {
		return nil, policyErrorf("a policy needs a name")
	}
	if p.VHost == "" {
		return nil, policyErrorf("a policy needs a vhost")
	}
	re, err := regexp.Compile(p.Pattern)
	if err != nil {
		return nil, policyErrorf("pattern %q is not a valid regular expression: %v", p.Pattern, err)
	}
	switch p.ApplyTo {
	case "":
		p.ApplyTo = ApplyAll
	case ApplyQueues, ApplyClassicQueues, ApplyQuorumQueues, ApplyStreams, ApplyExchanges, ApplyAll:
	default:
		return nil, policyErrorf("%q is not a valid apply-to value (queues, classic_queues, quorum_queues, streams, exchanges, all)", p.ApplyTo)
	}
	if operator && (p.ApplyTo == ApplyExchanges) {
		return nil, policyErrorf("operator policies apply to queues only, not %q", p.ApplyTo)
	}
	if len(p.Definition) == 0 {
		return nil, policyErrorf("a policy definition must not be empty")
	}
	def, norm, err := parsePolicyDefinition(p.Definition, operator)
	if err != nil {
		return nil, err
	}
	p.Definition = norm
	return &compiledPolicy{Policy: *p, re: re, def: def}, nil
}

// parsePolicyDefinition validates a definition's keys and values, in key
// order so the first error is always the same one.
func parsePolicyDefinition(in map[string]any, operator bool) (policyDef, map[string]any, error) {
	var d policyDef
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var unknown []string
	for _, k := range keys {
		opOK, known := policyKeys[k]
		if !known || (operator && !opOK) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		what := "policy"
		if operator {
			what = "operator policy"
		}
		return d, nil, policyErrorf("[%s] are not recognised %s settings", strings.Join(unknown, ", "), what)
	}
	norm := make(map[string]any, len(in))
	for _, k := range keys {
		v := in[k]
		var err error
		switch k {
		case "message-ttl":
			d.messageTTL, err = policyInt(k, v, 0, "a valid message TTL")
		case "expires":
			d.expires, err = policyInt(k, v, 1, "a valid queue expiry")
		case "max-length":
			d.maxLength, err = policyInt(k, v, 0, "a valid maximum length")
		case "max-length-bytes":
			d.maxBytes, err = policyInt(k, v, 0, "a valid maximum length in bytes")
		case "delivery-limit":
			d.deliveryLimit, err = policyInt(k, v, -1, "a valid delivery limit")
		case "stream-max-segment-size-bytes":
			d.segmentSize, err = policyInt(k, v, 1, "a valid segment size")
		case "overflow":
			s, _ := v.(string)
			switch Overflow(s) {
			case DropHead, RejectPublish, RejectPublishDLX:
				d.overflow = some(Overflow(s))
			default:
				err = policyErrorf("%s is not a valid overflow value (drop-head, reject-publish, reject-publish-dlx)", describeJSON(v))
			}
		case "dead-letter-exchange", "dead-letter-routing-key", "alternate-exchange":
			s, ok := v.(string)
			if !ok {
				err = policyErrorf("%s is not a valid %s: a string is needed", describeJSON(v), k)
			}
			switch k {
			case "dead-letter-exchange":
				d.dlx = some(s)
			case "dead-letter-routing-key":
				d.dlrk = some(s)
			default:
				d.alternate = some(s)
			}
		case "queue-mode":
			s, _ := v.(string)
			if s != "default" && s != "lazy" {
				err = policyErrorf("%s is not a valid queue-mode value (default, lazy)", describeJSON(v))
			}
			d.queueMode = some(s)
		case "queue-version":
			// RabbitMQ 3.10-3.13's classic queue storage version (CQv1 or
			// CQv2; 4.0 has only v2). Tern's classic queues have one
			// format: accepted so that those versions' definitions
			// import, with no effect (a definitions import warns).
			if n, ok := jsonInt(v); !ok || (n != 1 && n != 2) {
				err = policyErrorf("%s is not a valid queue-version value (1, 2)", describeJSON(v))
			}
		case "max-age":
			s, _ := v.(string)
			age, perr := parseMaxAge(s)
			if perr != nil {
				err = policyErrorf("%s is not a valid max age (a number and one of Y, M, D, h, m, s: \"7D\")", describeJSON(v))
			}
			d.maxAge = some(age)
		case "deliver-rate", "publish-rate":
			f, ok := jsonNumber(v)
			if !ok || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				err = policyErrorf("%s is not a valid %s: a number of messages per second above 0 is needed", describeJSON(v), k)
			}
			if k == "deliver-rate" {
				d.deliverRate = some(f)
			} else {
				d.publishRate = some(f)
			}
			v = f
		}
		if err != nil {
			return d, nil, err
		}
		if n, ok := jsonInt(v); ok && k != "deliver-rate" && k != "publish-rate" {
			v = n
		}
		norm[k] = v
	}
	return d, norm, nil
}

// policyInt reads an integer definition value of at least min.
func policyInt(key string, v any, min int64, what string) (opt[int64], error) {
	n, ok := jsonInt(v)
	if !ok || n < min {
		return opt[int64]{}, policyErrorf("%s is not %s (%s: an integer of at least %d)", describeJSON(v), what, key, min)
	}
	return some(n), nil
}

// jsonNumber reads a number as JSON (float64, json.Number) or Go (ints)
// gives it.
func jsonNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	if n, ok := argInt(v); ok {
		return float64(n), true
	}
	return 0, false
}

// jsonInt reads an integral number.
func jsonInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, false
		}
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case bool, string, nil:
		return 0, false
	}
	return argInt(v)
}

func describeJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// appliesTo says whether the policy concerns a queue of type t (isQueue)
// or an exchange.
func (p *compiledPolicy) appliesTo(isQueue bool, t QueueType) bool {
	switch p.ApplyTo {
	case ApplyAll:
		return true
	case ApplyExchanges:
		return !isQueue
	case ApplyQueues:
		return isQueue
	case ApplyClassicQueues:
		return isQueue && t == Classic
	case ApplyQuorumQueues:
		return isQueue && t == Quorum
	case ApplyStreams:
		return isQueue && t == Stream
	}
	return false
}

// pickPolicy returns the policy for an object: of those that apply to its
// kind and match its name, the highest priority; among equal priorities
// the first by name (RabbitMQ leaves that tie to chance; here it is
// deterministic, so every node of a cluster picks the same one).
func pickPolicy(ps map[string]*compiledPolicy, name string, isQueue bool, t QueueType) *compiledPolicy {
	var best *compiledPolicy
	for _, p := range ps {
		if !p.appliesTo(isQueue, t) || !p.re.MatchString(name) {
			continue
		}
		if best == nil || p.Priority > best.Priority || (p.Priority == best.Priority && p.Name < best.Name) {
			best = p
		}
	}
	return best
}

// normalizeDefinition turns the integral numbers of a decoded definition
// (float64 from JSON) into int64, as ValidatePolicy leaves them, so a
// policy read back is equal to the one written. The rates stay float64.
func normalizeDefinition(d map[string]any) map[string]any {
	for k, v := range d {
		if f, ok := v.(float64); ok && k != "deliver-rate" && k != "publish-rate" {
			if n, ok := jsonInt(f); ok {
				d[k] = n
			}
		}
	}
	return d
}
