package broker

import (
	"maps"
	"sort"
)

// SetPolicy adds or replaces a policy (operator: an operator policy) and
// applies it at once to every queue and exchange of its vhost. It returns
// once the change is durable (in a cluster: committed and applied here). A
// policy that does not validate is refused with a *PolicyError; an
// unknown vhost with a KindNotFound error.
func (b *Broker) SetPolicy(p Policy, operator bool) error {
	p, err := ValidatePolicy(p, operator)
	if err != nil {
		return err
	}
	v := b.VHost(p.VHost)
	if v == nil {
		return errorf(KindNotFound, "no vhost '%s'", p.VHost)
	}
	return v.changePolicy(SetPolicy{Operator: operator, Policy: p})
}

// ClearPolicy removes a policy (operator: an operator policy); the queues
// and exchanges it applied to take the next matching one, or none, at
// once. A missing policy is a KindNotFound error.
func (b *Broker) ClearPolicy(vhost, name string, operator bool) error {
	v := b.VHost(vhost)
	if v == nil {
		return errorf(KindNotFound, "no vhost '%s'", vhost)
	}
	if _, ok := b.Policy(vhost, name, operator); !ok {
		return errorf(KindNotFound, "no policy '%s' in vhost '%s'", name, vhost)
	}
	return v.changePolicy(ClearPolicy{Operator: operator, VHost: vhost, Name: name})
}

func (v *VHost) changePolicy(c Command) error {
	fx, err := v.run(false, func(fx *effects) error {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.commitLocked(c, fx)
	})
	fx.cancelAll() // dead letters of heads a lower limit dropped
	return err
}

// Policies lists the policies (operator: the operator policies) of a vhost,
// or of every vhost when vhost is "", by vhost and name. For GET
// /api/policies and a definitions export.
func (b *Broker) Policies(vhost string, operator bool) []Policy {
	var out []Policy
	for _, v := range b.VHosts() {
		if vhost != "" && v.name != vhost {
			continue
		}
		v.mu.Lock()
		out = append(out, v.policiesLocked(operator)...)
		v.mu.Unlock()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].VHost != out[j].VHost {
			return out[i].VHost < out[j].VHost
		}
		return out[i].Name < out[j].Name
	})
	for i := range out {
		out[i].Definition = maps.Clone(out[i].Definition)
	}
	return out
}

// Policy returns one policy (operator: operator policy).
func (b *Broker) Policy(vhost, name string, operator bool) (Policy, bool) {
	v := b.VHost(vhost)
	if v == nil {
		return Policy{}, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	set := v.policies.user
	if operator {
		set = v.policies.operator
	}
	p, ok := set[name]
	if !ok {
		return Policy{}, false
	}
	out := p.Policy
	out.Definition = maps.Clone(out.Definition)
	return out, true
}

// ApplyPolicies sets every policy of ps (operator: as operator policies),
// for a definitions import. All are validated first and nothing changes
// if one is invalid or names a vhost that does not exist; then they are
// set in order. Policies not in ps stay.
func (b *Broker) ApplyPolicies(ps []Policy, operator bool) error {
	valid := make([]Policy, len(ps))
	for i, p := range ps {
		n, err := ValidatePolicy(p, operator)
		if err != nil {
			return err
		}
		if b.VHost(n.VHost) == nil {
			return errorf(KindNotFound, "no vhost '%s'", n.VHost)
		}
		valid[i] = n
	}
	for _, p := range valid {
		if err := b.VHost(p.VHost).changePolicy(SetPolicy{Operator: operator, Policy: p}); err != nil {
			return err
		}
	}
	return nil
}
