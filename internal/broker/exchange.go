package broker

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/route"
)

// ExchangeConfig describes an exchange to declare.
type ExchangeConfig struct {
	Name       string
	Type       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       map[string]any
}

// Exchange types.
const (
	TypeDirect  = "direct"
	TypeFanout  = "fanout"
	TypeTopic   = "topic"
	TypeHeaders = "headers"
	// TypeDelayed holds messages for their x-delay header (milliseconds)
	// and then routes them as its x-delayed-type would, as RabbitMQ's
	// delayed-message plugin does.
	TypeDelayed = "x-delayed-message"
	// TypeConsistentHash routes each message to one bound destination by
	// hashing its routing key (or the header named by the hash-header
	// argument, or the message_id, correlation_id or timestamp property
	// named by hash-property); the binding key is the weight.
	TypeConsistentHash = "x-consistent-hash"
	// TypeRandom routes each message to one bound destination chosen
	// uniformly at random.
	TypeRandom = "x-random"
)

// target is a binding's destination: a queue or an exchange.
type target struct {
	q *Queue
	x *Exchange
}

// Binding links a source exchange to a queue or an exchange.
type Binding struct {
	Source   *Exchange
	Queue    *Queue    // set for queue bindings
	Exchange *Exchange // set for exchange-to-exchange bindings
	Key      string
	Args     map[string]any
}

func (b *Binding) target() target { return target{q: b.Queue, x: b.Exchange} }

func (b *Binding) same(o *Binding) bool {
	return b.Source == o.Source && b.Queue == o.Queue && b.Exchange == o.Exchange && b.Key == o.Key && argsEqual(b.Args, o.Args)
}

func argsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !route.Equal(v, w) {
			return false
		}
	}
	return true
}

// Exchange routes published messages to queues and exchanges.
type Exchange struct {
	cfg       ExchangeConfig
	vhost     *VHost
	kind      route.Kind
	isDefault bool
	alternate string
	delayed   *delayQueue

	bindings []*Binding // guarded by vhost.mu
	inbound  []*Binding // bindings with this exchange as destination; vhost.mu
	table    atomic.Pointer[routeTable]
	pol      atomic.Pointer[exchangePolicy] // the policy it matches (policy_apply.go)
	// bindingsSnap is the bindings as of their last change (immutable);
	// table is rebuilt from it when it is not what table was built from.
	bindingsSnap atomic.Pointer[[]*Binding]
	buildMu      sync.Mutex // one build at a time

	published, routed atomic.Uint64 // message_stats (exchange_stats.go)
}

// routeTable is a routing table and the bindings it was built from.
type routeTable struct {
	t    route.Table[target]
	from *[]*Binding
}

// Name returns the exchange's name ("" for the default exchange).
func (x *Exchange) Name() string { return x.cfg.Name }

// Config returns how the exchange was declared.
func (x *Exchange) Config() ExchangeConfig { return x.cfg }

// routingKind maps a declared type to its routing algorithm.
func routingKind(cfg ExchangeConfig) (route.Kind, error) {
	t := cfg.Type
	if t == TypeDelayed {
		inner, _ := cfg.Args["x-delayed-type"].(string)
		if inner == "" {
			return "", errorf(KindPreconditionFailed, "Invalid argument, 'x-delayed-type' must be an existing exchange type")
		}
		if inner == TypeDelayed {
			return "", errorf(KindPreconditionFailed, "Invalid argument, 'x-delayed-type' must be an existing exchange type")
		}
		t = inner
	}
	switch t {
	case TypeDirect, TypeFanout, TypeTopic, TypeHeaders, TypeConsistentHash, TypeRandom:
		return route.Kind(t), nil
	}
	if cfg.Type == TypeDelayed {
		return "", errorf(KindPreconditionFailed, "Invalid argument, 'x-delayed-type' must be an existing exchange type")
	}
	return "", errorf(KindInvalid, "unknown exchange type '%s'", cfg.Type)
}

func newExchange(v *VHost, cfg ExchangeConfig, kind route.Kind) *Exchange {
	x := &Exchange{cfg: cfg, vhost: v, kind: kind, isDefault: cfg.Name == ""}
	x.alternate, _ = cfg.Args["alternate-exchange"].(string)
	if cfg.Type == TypeDelayed {
		x.delayed = newDelayQueue(x)
	}
	x.rebuildLocked()
	return x
}

// rebuildLocked records that the bindings changed: the next message
// routed through the exchange builds the routing table from this snapshot
// of them (routes). Building on every change cost O(bindings) per binding,
// so 10,000 MQTT clients subscribing took minutes; now a burst of binding
// changes costs one build. The snapshot shares x.bindings' array, which
// is only ever appended to past the snapshot's length (a removal makes a
// new one: removeBindingLocked), so taking it is O(1): a copy per change
// cost 10,000 sessions restored or subscribing 400 MB of garbage. vhost.mu
// must be held.
func (x *Exchange) rebuildLocked() {
	bs := x.bindings[:len(x.bindings):len(x.bindings)]
	x.bindingsSnap.Store(&bs)
}

// routes returns the routing table for the current bindings, building it
// if they changed since it was last built.
func (x *Exchange) routes() route.Table[target] {
	snap := x.bindingsSnap.Load()
	if rt := x.table.Load(); rt != nil && rt.from == snap {
		return rt.t
	}
	x.buildMu.Lock()
	defer x.buildMu.Unlock()
	snap = x.bindingsSnap.Load()
	if rt := x.table.Load(); rt != nil && rt.from == snap {
		return rt.t
	}
	bs := make([]route.Binding[target], len(*snap))
	for i, b := range *snap {
		name := ""
		if x.kind == route.ConsistentHash {
			// Only the ring places by name: other kinds skip a string per binding.
			if b.Queue != nil {
				name = "q:" + b.Queue.cfg.Name
			} else {
				name = "x:" + b.Exchange.cfg.Name
			}
		}
		bs[i] = route.Binding[target]{Key: b.Key, Args: b.Args, Dest: b.target(), Name: name}
	}
	t, err := route.Build(x.kind, bs)
	if err != nil {
		// The kind was validated at declare time.
		panic(err)
	}
	x.table.Store(&routeTable{t: t, from: snap})
	return t
}

// hashKey returns what a consistent-hash exchange hashes for m.
func (x *Exchange) hashKey(m *message.Message) string {
	if h, ok := x.cfg.Args["hash-header"].(string); ok && h != "" {
		return fmt.Sprint(m.Props.Headers[h])
	}
	switch x.cfg.Args["hash-property"] {
	case "message_id":
		return m.Props.MessageID
	case "correlation_id":
		return m.Props.CorrelationID
	case "timestamp":
		return fmt.Sprint(m.Props.Timestamp.Unix())
	}
	return m.RoutingKey
}

// reservedName reports names only the broker may declare.
func reservedName(name string) bool { return strings.HasPrefix(name, "amq.") }
