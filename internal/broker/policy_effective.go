package broker

import "maps"

// How a policy, an operator policy and a queue's declared arguments make
// the queue's effective settings. RabbitMQ's rules, key by key:
//
// First the policy and the operator policy merge (rabbit_policy): a key
// only one of them sets is taken from it; a key both set takes the lower
// value (every key an operator policy may set is numeric).
//
// Then the merged value meets the declared x-argument, by queue type:
//
//	key                        classic     quorum            stream
//	message-ttl, expires,
//	max-length,
//	max-length-bytes           lower       lower             max-length-bytes: policy
//	overflow                   argument    policy            -
//	dead-letter-exchange,
//	dead-letter-routing-key    argument    argument          -
//	delivery-limit             -           lower; a negative
//	                                       (unlimited) one
//	                                       loses to a limit  -
//	max-age,
//	stream-max-segment-size-
//	bytes                      -           -                 policy
//	queue-mode                 argument (no effect in Tern)
//
// (rabbit_amqqueue_process:process_args_policy, rabbit_quorum_queue:
// gather_policy_config and dead_letter_handler, rabbit_stream_queue:
// update_stream_conf.) Tern's own keys: deliver-rate (x-deliver-rate,
// classic queues) takes the lower of policy and argument; publish-rate has
// no argument. A key a queue type does not read is ignored for it, as
// RabbitMQ ignores it.

// mergePolicies merges a policy and an operator policy, either may be nil.
func mergePolicies(p, op *compiledPolicy) policyDef {
	var d, o policyDef
	if p != nil {
		d = p.def
	}
	if op == nil {
		return d
	}
	o = op.def
	d.messageTTL = lowerOpt(d.messageTTL, o.messageTTL)
	d.expires = lowerOpt(d.expires, o.expires)
	d.maxLength = lowerOpt(d.maxLength, o.maxLength)
	d.maxBytes = lowerOpt(d.maxBytes, o.maxBytes)
	switch {
	case d.deliveryLimit.ok && d.deliveryLimit.v < 0:
		// Unlimited (-1) is no cap on an operator's limit: the limit
		// wins, as it does against an argument (resolve_delivery_limit).
		if o.deliveryLimit.ok {
			d.deliveryLimit = o.deliveryLimit
		}
	case o.deliveryLimit.ok && o.deliveryLimit.v < 0:
	default:
		d.deliveryLimit = lowerOpt(d.deliveryLimit, o.deliveryLimit)
	}
	d.deliverRate = lowerOpt(d.deliverRate, o.deliverRate)
	d.publishRate = lowerOpt(d.publishRate, o.publishRate)
	return d
}

// mergedDefinition is the definition RabbitMQ shows as a queue's
// effective_policy_definition: the policy's and operator policy's merged.
func mergedDefinition(p, op *compiledPolicy) map[string]any {
	out := map[string]any{}
	if p != nil {
		maps.Copy(out, p.Definition)
	}
	if op != nil {
		for k, v := range op.Definition {
			if have, ok := out[k]; ok {
				a, _ := jsonNumber(have)
				b, _ := jsonNumber(v)
				if b >= a {
					continue
				}
			}
			out[k] = v
		}
	}
	return out
}

func lowerOpt[T int64 | float64](a, b opt[T]) opt[T] {
	switch {
	case !a.ok:
		return b
	case !b.ok:
		return a
	}
	return some(min(a.v, b.v))
}

// effectiveArgs applies a merged policy definition d to a queue's
// declared arguments a (parsed from raw) for a queue of type t.
func effectiveArgs(a queueArgs, raw map[string]any, t QueueType, d policyDef) queueArgs {
	has := func(k string) bool { _, ok := raw[k]; return ok }
	lowerMs := func(argSet bool, arg int64, pol opt[int64]) (int64, bool) {
		switch {
		case !pol.ok:
			return arg, argSet
		case !argSet:
			return pol.v, true
		}
		return min(arg, pol.v), true
	}
	switch t {
	case Classic, Quorum:
		if d.messageTTL.ok {
			ms, _ := lowerMs(a.hasTTL, a.messageTTL.Milliseconds(), d.messageTTL)
			a.messageTTL, a.hasTTL = msDuration(ms), true
		}
		if d.expires.ok {
			ms, _ := lowerMs(a.expires > 0, a.expires.Milliseconds(), d.expires)
			a.expires = msDuration(ms)
		}
		if d.maxLength.ok {
			a.maxLength, _ = lowerMs(a.maxLength >= 0, a.maxLength, d.maxLength)
		}
		if d.maxBytes.ok {
			a.maxBytes, _ = lowerMs(a.maxBytes >= 0, a.maxBytes, d.maxBytes)
		}
		if d.dlx.ok && !a.hasDLX {
			a.dlx, a.hasDLX = d.dlx.v, true
		}
		if d.dlrk.ok && !a.hasDLRK {
			a.dlrk, a.hasDLRK = d.dlrk.v, true
		}
		if d.overflow.ok {
			if t == Quorum {
				// The policy wins on a quorum queue; reject-publish-dlx is
				// not a quorum queue's (RabbitMQ falls back to drop-head).
				a.overflow = d.overflow.v
				if a.overflow == RejectPublishDLX {
					a.overflow = DropHead
				}
			} else if !has("x-overflow") {
				a.overflow = d.overflow.v
			}
		}
	case Stream:
		if d.maxBytes.ok {
			a.maxBytes = d.maxBytes.v
		}
		if d.maxAge.ok {
			a.maxAge = d.maxAge.v
		}
		if d.segmentSize.ok {
			a.segmentSize = d.segmentSize.v
		}
	}
	if t == Classic && d.deliverRate.ok {
		if a.deliverRate <= 0 || d.deliverRate.v < a.deliverRate {
			a.deliverRate = d.deliverRate.v
		}
	}
	if t == Quorum && d.deliveryLimit.ok {
		pol, arg := d.deliveryLimit.v, a.quorum.deliveryLimit
		if !has("x-delivery-limit") {
			a.quorum.deliveryLimit = pol
		} else if pol < 0 || arg < 0 {
			a.quorum.deliveryLimit = max(pol, arg) // resolve_delivery_limit: a limit beats unlimited
		} else {
			a.quorum.deliveryLimit = min(pol, arg)
		}
	}
	if d.publishRate.ok {
		a.publishRate = d.publishRate.v
	}
	return a
}
