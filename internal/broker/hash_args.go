package broker

import (
	"strconv"

	"github.com/tern-broker/tern/internal/route"
)

// Consistent-hash exchange checks, as rabbitmq_consistent_hash_exchange
// makes them (validate/1 and validate_binding/2 of
// rabbit_exchange_type_consistent_hash): a binding key that is no positive
// integer weight, or arguments that name no usable hash source, used to
// be accepted and then routed nothing, so every message published to the
// exchange vanished (or came back, if mandatory). The realistic mistake —
// binding with a routing-key-like string as one does on a direct exchange
// — is now refused when it is made: 406 PRECONDITION_FAILED with the
// plugin's text.
//
// They are made when a client declares or binds (and when definitions
// are imported), never when stored definitions are restored or replayed:
// an exchange or binding accepted by an earlier version still loads (its
// bad bindings still route nothing).

// maxHashWeight bounds a binding's weight. Each unit is route.VirtualNodes
// ring points, so an unbounded weight could take all memory; the plugin
// has no bound (its buckets cost less), Tern refuses more.
const maxHashWeight = 1000

// hashProperties are the message properties hash-property may name.
var hashProperties = []string{"correlation_id", "message_id", "timestamp"}

// checkHashArgs checks a consistent-hash exchange's hash-header and
// hash-property arguments.
func checkHashArgs(args map[string]any) error {
	h, hasHeader := args["hash-header"]
	p, hasProperty := args["hash-property"]
	if hasHeader {
		if _, ok := h.(string); !ok {
			return errorf(KindPreconditionFailed, "hash-header must be a string, not %v", h)
		}
	}
	if hasProperty {
		s, ok := p.(string)
		if !ok {
			return errorf(KindPreconditionFailed, "hash-property must be a string, not %v", p)
		}
		if hasHeader {
			return errorf(KindPreconditionFailed, "hash-header and hash-property are mutually exclusive")
		}
		valid := false
		for _, v := range hashProperties {
			valid = valid || s == v
		}
		if !valid {
			return errorf(KindPreconditionFailed, "Unsupported property: %s", s)
		}
	}
	return nil
}

// checkHashWeight checks a consistent-hash binding's key: its weight.
func checkHashWeight(key string) error {
	w, err := strconv.ParseInt(key, 10, 64)
	huge := isRangeError(err) // an integer, beyond int64
	switch {
	case err != nil && !huge:
		return errorf(KindPreconditionFailed, "The binding key must be an integer: <<%q>>", key)
	case huge && key[0] == '-', !huge && w < 1:
		return errorf(KindPreconditionFailed, "The binding key must be greater than 0")
	case huge || w > maxHashWeight:
		return errorf(KindPreconditionFailed, "The binding key (a weight) must be at most %d: %s", maxHashWeight, key)
	}
	return nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// checkExchangeArgs makes the checks of an exchange's arguments that
// depend on its routing kind; routingKind has checked the kind.
func checkExchangeArgs(cfg ExchangeConfig) error {
	if kind, err := routingKind(cfg); err == nil && kind == route.ConsistentHash {
		return checkHashArgs(cfg.Args)
	}
	return nil
}

// checkBindingKey checks a new binding's key against its source exchange.
func checkBindingKey(b *Binding) error {
	if b.Source.kind == route.ConsistentHash {
		return checkHashWeight(b.Key)
	}
	return nil
}

// CheckBinding checks a binding's key against the exchange it would
// bind from (src as declared), as BindQueue and BindExchange would: for
// an import that checks everything before it changes anything.
func CheckBinding(src ExchangeConfig, key string) error {
	if kind, err := routingKind(src); err == nil && kind == route.ConsistentHash {
		return checkHashWeight(key)
	}
	return nil
}
