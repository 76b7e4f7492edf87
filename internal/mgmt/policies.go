package mgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tern-broker/tern/internal/broker"
)

// PolicyStore is what the policy endpoints need of the broker;
// *broker.Broker is one.
type PolicyStore interface {
	Policies(vhost string, operator bool) []broker.Policy
	Policy(vhost, name string, operator bool) (broker.Policy, bool)
	SetPolicy(p broker.Policy, operator bool) error
	ClearPolicy(vhost, name string, operator bool) error
}

// handlePolicies registers RabbitMQ's policy endpoints, for policies
// (/api/policies) and operator policies (/api/operator-policies):
//
//	GET    /api/policies                    every vhost's
//	GET    /api/policies/{vhost}            one vhost's (404 for an unknown vhost)
//	GET    /api/policies/{vhost}/{name}     one (404 when missing)
//	PUT    /api/policies/{vhost}/{name}     create (201) or replace (204)
//	DELETE /api/policies/{vhost}/{name}     204; 404 when missing
//
// The JSON is RabbitMQ's: {"vhost","name","pattern","apply-to",
// "definition","priority"}. A PUT body is {"pattern","definition",
// "priority","apply-to"}; a bad body or definition answers 400 with
// {"error":"bad_request","reason":…}.
func handlePolicies(mux *http.ServeMux, src Sources) {
	if src.Policies == nil {
		return
	}
	for _, op := range []bool{false, true} {
		base := "/api/policies"
		if op {
			base = "/api/operator-policies"
		}
		mux.HandleFunc("GET "+base, func(w http.ResponseWriter, r *http.Request) {
			if !policyAccess(w, r, "", op) {
				return
			}
			ps := src.Policies.Policies("", op)
			if !isAdmin(r) { // a policymaker sees its vhosts' policies
				ps = slices.DeleteFunc(slices.Clone(ps), func(p broker.Policy) bool { return !canAccess(r, p.VHost) })
			}
			writeJSON(w, http.StatusOK, nonNilPolicies(ps))
		})
		mux.HandleFunc(base+"/", func(w http.ResponseWriter, r *http.Request) { policyPath(w, r, src, base, op) })
	}
}

// policyPath serves base/{vhost} and base/{vhost}/{name}. It splits the
// escaped path itself: RabbitMQ's clients write the default vhost "/" as
// %2F, which ServeMux's wildcards do not take as one segment.
func policyPath(w http.ResponseWriter, r *http.Request, src Sources, base string, op bool) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), base+"/")
	var segs []string
	for _, raw := range strings.Split(rest, "/") {
		seg, err := url.PathUnescape(raw)
		if err != nil {
			policyBadRequest(w, "bad path segment "+strconv.Quote(raw))
			return
		}
		segs = append(segs, seg)
	}
	if src.VHostExists != nil && !src.VHostExists(segs[0]) {
		policyNotFound(w)
		return
	}
	if !policyAccess(w, r, segs[0], op) {
		return
	}
	switch {
	case len(segs) == 1 && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		if src.VHostExists != nil && !src.VHostExists(segs[0]) {
			policyNotFound(w)
			return
		}
		writeJSON(w, http.StatusOK, nonNilPolicies(src.Policies.Policies(segs[0], op)))
	case len(segs) != 2 || segs[1] == "":
		policyNotFound(w)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		p, ok := src.Policies.Policy(segs[0], segs[1], op)
		if !ok {
			policyNotFound(w)
			return
		}
		writeJSON(w, http.StatusOK, p)
	case r.Method == http.MethodPut:
		putPolicy(w, r, src, segs[0], segs[1], op)
	case r.Method == http.MethodDelete:
		if err := src.Policies.ClearPolicy(segs[0], segs[1], op); err != nil {
			policyError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "reason": r.Method + " is not allowed here"})
	}
}

// policyBody is a PUT's body. vhost and name, which rabbitmqadmin and
// definitions files carry, must agree with the path when present.
type policyBody struct {
	VHost      *string         `json:"vhost"`
	Name       *string         `json:"name"`
	Pattern    *string         `json:"pattern"`
	ApplyTo    string          `json:"apply-to"`
	Definition map[string]any  `json:"definition"`
	Priority   json.RawMessage `json:"priority"`
}

// maxPolicyBody bounds a PUT's body; a policy is a few hundred bytes.
const maxPolicyBody = 1 << 20

func putPolicy(w http.ResponseWriter, r *http.Request, src Sources, vhost, name string, op bool) {
	if src.VHostExists != nil && !src.VHostExists(vhost) {
		policyNotFound(w)
		return
	}
	p, err := decodePolicyBody(http.MaxBytesReader(w, r.Body, maxPolicyBody), vhost, name)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "bad_request", "reason": "request body too large"})
			return
		}
		policyBadRequest(w, err.Error())
		return
	}
	_, existed := src.Policies.Policy(vhost, name, op)
	if err := src.Policies.SetPolicy(p, op); err != nil {
		policyError(w, err)
		return
	}
	if existed {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// decodePolicyBody reads a PUT body into a policy of vhost named name.
// Numbers keep their text (json.Number) so an integer is told from a
// fraction.
func decodePolicyBody(body io.Reader, vhost, name string) (broker.Policy, error) {
	var b policyBody
	dec := json.NewDecoder(body)
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return broker.Policy{}, fmt.Errorf("body must be a JSON policy object: %v", err)
	}
	if dec.More() {
		return broker.Policy{}, errors.New("body must hold one JSON object")
	}
	switch {
	case b.Pattern == nil:
		return broker.Policy{}, errors.New("pattern is required")
	case b.Definition == nil:
		return broker.Policy{}, errors.New("definition is required (a JSON object)")
	case b.VHost != nil && *b.VHost != vhost:
		return broker.Policy{}, fmt.Errorf("vhost %q in the body differs from %q in the path", *b.VHost, vhost)
	case b.Name != nil && *b.Name != name:
		return broker.Policy{}, fmt.Errorf("name %q in the body differs from %q in the path", *b.Name, name)
	}
	if err := mirroringKeys(b.Definition); err != nil {
		return broker.Policy{}, err
	}
	prio, err := parsePriority(b.Priority)
	if err != nil {
		return broker.Policy{}, err
	}
	return broker.Policy{VHost: vhost, Name: name, Pattern: *b.Pattern, ApplyTo: b.ApplyTo, Definition: b.Definition, Priority: prio}, nil
}

// mirroringKeys refuses a definition with an ha-* key, naming it: classic
// queue mirroring, which RabbitMQ 4.0 removed (a 4.x node refuses such a
// policy as unknown keys, and will not boot with one left from 3.13) and
// Tern never had. Refusing is what RabbitMQ 4 does; the reason says how to
// clean a 3.13 export. A policy that ignored them would silently drop the
// replication its author asked for.
func mirroringKeys(def map[string]any) error {
	var keys []string
	for k := range def {
		if strings.HasPrefix(k, "ha-") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	return fmt.Errorf("'%s' is classic queue mirroring, removed in RabbitMQ 4.0 and not in Tern: "+
		"remove the ha-* keys (%s) from the policy (RabbitMQ 3.13's rabbitmqctl remove_classic_queue_mirroring_from_policies does) "+
		"and use quorum queues for replication", keys[0], strings.Join(keys, ", "))
}

// parsePriority reads a priority given as a JSON integer or, as RabbitMQ's
// UI sends it, as a string of one; absent is 0.
func parsePriority(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s)
		if s == "" {
			return 0, nil
		}
	}
	n, err := strconv.ParseInt(string(raw), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("priority must be an integer, not %s", raw)
	}
	return int(n), nil
}

// policyError answers a broker's refusal: 400 for a bad policy, 404 for
// an unknown vhost or policy, 500 otherwise.
func policyError(w http.ResponseWriter, err error) {
	var pe *broker.PolicyError
	switch {
	case errors.As(err, &pe):
		policyBadRequest(w, pe.Reason)
	case errors.Is(err, broker.ErrNotFound):
		policyNotFound(w)
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal_error", "reason": err.Error()})
	}
}

func policyBadRequest(w http.ResponseWriter, reason string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad_request", "reason": reason})
}

// policyNotFound is RabbitMQ's 404 body.
func policyNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "Object Not Found", "reason": "Not Found"})
}

// nonNilPolicies makes an empty list [] in JSON rather than null.
func nonNilPolicies(ps []broker.Policy) []broker.Policy {
	if ps == nil {
		return []broker.Policy{}
	}
	return ps
}

// queuePolicyFields are the policy fields of RabbitMQ's queue object, for
// GET /api/queues: "policy" and "operator_policy" (null when none) and
// "effective_policy_definition" (the two merged; {} when none).
func queuePolicyFields(q *broker.Queue) map[string]any {
	p := q.Policy()
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{"policy": orNull(p.Policy), "operator_policy": orNull(p.OperatorPolicy),
		"effective_policy_definition": p.EffectiveDefinition}
}
