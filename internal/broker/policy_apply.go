package broker

import (
	"sort"
	"sync/atomic"
)

// vhostPolicies are a vhost's policies and operator policies by name,
// guarded by the vhost's mu.
type vhostPolicies struct {
	user, operator map[string]*compiledPolicy
}

func (vp *vhostPolicies) set(operator bool) map[string]*compiledPolicy {
	if operator {
		if vp.operator == nil {
			vp.operator = map[string]*compiledPolicy{}
		}
		return vp.operator
	}
	if vp.user == nil {
		vp.user = map[string]*compiledPolicy{}
	}
	return vp.user
}

// QueuePolicy is what policies do to a queue, as RabbitMQ's queue object
// shows it: the names of its policy and operator policy ("" for none) and
// the definition the two make together.
type QueuePolicy struct {
	Policy              string
	OperatorPolicy      string
	EffectiveDefinition map[string]any
}

// queuePolicyState is a queue's policy state: the effective arguments
// (nil: the declared ones) and the policies they came from. Both change
// only under the vhost's mu, and are read without it.
type queuePolicyState struct {
	eff  atomic.Pointer[queueArgs]
	info atomic.Pointer[QueuePolicy]
}

// cur returns the queue's effective arguments: its declared ones with its
// policies applied. Read it afresh when it matters: a policy change
// replaces it at any moment.
func (q *Queue) cur() *queueArgs {
	if a := q.pol.eff.Load(); a != nil {
		return a
	}
	return q.args
}

// Policy returns the queue's policy, operator policy and their merged
// definition (for the HTTP API's policy, operator_policy and
// effective_policy_definition fields).
func (q *Queue) Policy() QueuePolicy {
	if p := q.pol.info.Load(); p != nil {
		return *p
	}
	return QueuePolicy{EffectiveDefinition: map[string]any{}}
}

// exchangePolicy is the policy an exchange matches, and its
// alternate-exchange key.
type exchangePolicy struct {
	name      string
	alternate string
}

// Policy returns the name of the exchange's policy, "" for none.
func (x *Exchange) Policy() string {
	if p := x.pol.Load(); p != nil {
		return p.name
	}
	return ""
}

// alternateExchange is the exchange's alternate exchange: its
// alternate-exchange argument, else its policy's (the argument wins, as in
// RabbitMQ).
func (x *Exchange) alternateExchange() string {
	if x.alternate != "" {
		return x.alternate
	}
	if p := x.pol.Load(); p != nil {
		return p.alternate
	}
	return ""
}

// policyHook is a queue backend that acts on a change of its effective
// arguments at once (lowering max-length drops heads). It runs under the
// vhost's lock; what it returns runs after it (dead-lettering).
type policyHook interface {
	policyChanged() (after func())
}

// applyPolicyLocked applies a SetPolicy or ClearPolicy command and then
// re-applies the vhost's policies to every queue and exchange. v.mu is
// held.
func (v *VHost) applyPolicyLocked(c Command, fx *effects) error {
	switch c := c.(type) {
	case SetPolicy:
		p := c.Policy
		cp, err := compilePolicy(&p, c.Operator)
		if err != nil {
			return err
		}
		v.policies.set(c.Operator)[cp.Name] = cp
	case ClearPolicy:
		set := v.policies.set(c.Operator)
		if set[c.Name] == nil {
			return nil
		}
		delete(set, c.Name)
	}
	v.logLocked(c, fx)
	v.reapplyPoliciesLocked(fx)
	return nil
}

// reapplyPoliciesLocked gives every queue and exchange of the vhost the
// policies that now match it. v.mu is held.
func (v *VHost) reapplyPoliciesLocked(fx *effects) {
	for _, q := range v.queues.all() {
		if !q.cfg.Internal {
			v.applyQueuePolicyLocked(q, fx)
		}
	}
	v.exchanges.Range(func(_, xv any) bool {
		v.applyExchangePolicyLocked(xv.(*Exchange))
		return true
	})
}

// applyQueuePolicyLocked computes q's effective arguments from the
// vhost's policies and, when they changed, tells its backend. v.mu is
// held.
func (v *VHost) applyQueuePolicyLocked(q *Queue, fx *effects) {
	p := pickPolicy(v.policies.user, q.cfg.Name, true, q.kind)
	op := pickPolicy(v.policies.operator, q.cfg.Name, true, q.kind)
	if p == nil && op == nil {
		// Policy() answers for none; no record kept per queue.
		q.pol.info.Store(nil)
	} else {
		info := &QueuePolicy{EffectiveDefinition: mergedDefinition(p, op)}
		if p != nil {
			info.Policy = p.Name
		}
		if op != nil {
			info.OperatorPolicy = op.Name
		}
		q.pol.info.Store(info)
	}
	eff := effectiveArgs(*q.args, q.cfg.Args, q.kind, mergePolicies(p, op))
	q.setPublishRate(eff.publishRate)
	if *q.cur() == eff {
		return
	}
	q.pol.eff.Store(&eff)
	if h, ok := q.backend.(policyHook); ok && q.backend != nil {
		if after := h.policyChanged(); after != nil {
			fx.cancel = append(fx.cancel, after)
		}
	}
}

func (v *VHost) applyExchangePolicyLocked(x *Exchange) {
	if x.isDefault {
		return
	}
	p := pickPolicy(v.policies.user, x.cfg.Name, false, 0)
	if p == nil {
		if x.pol.Load() != nil {
			x.pol.Store(nil)
		}
		return
	}
	x.pol.Store(&exchangePolicy{name: p.Name, alternate: p.def.alternate.v})
}

// policiesLocked lists the vhost's policies (or operator policies) by
// name. v.mu is held.
func (v *VHost) policiesLocked(operator bool) []Policy {
	set := v.policies.user
	if operator {
		set = v.policies.operator
	}
	out := make([]Policy, 0, len(set))
	for _, p := range set {
		out = append(out, p.Policy)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// policyCommands are the commands that set d's policies: a snapshot's
// restore applies them before its queues, so a queue opens with its
// policy (a stream's segment size).
func policyCommands(d *Definitions) []Command {
	var out []Command
	for _, p := range d.Policies {
		out = append(out, SetPolicy{Policy: p})
	}
	for _, p := range d.OperatorPolicies {
		out = append(out, SetPolicy{Operator: true, Policy: p})
	}
	return out
}

// stalePolicies are the commands that clear the policies of vhost that
// have (the node's) holds and want (a snapshot) does not.
func stalePolicies(vhost string, have, want *Definitions) []Command {
	var out []Command
	for _, op := range []bool{false, true} {
		hs, ws := have.Policies, want.Policies
		if op {
			hs, ws = have.OperatorPolicies, want.OperatorPolicies
		}
		keep := map[string]bool{}
		for _, p := range ws {
			if p.VHost == vhost {
				keep[p.Name] = true
			}
		}
		for _, p := range hs {
			if p.VHost == vhost && !keep[p.Name] {
				out = append(out, ClearPolicy{Operator: op, VHost: vhost, Name: p.Name})
			}
		}
	}
	return out
}
