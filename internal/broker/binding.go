package broker

import (
	"slices"

	"github.com/tern-broker/tern/internal/route"
)

// bindQueue binds queue to exchange with key and args. Binding twice is a
// no-op.
func (v *VHost) bindQueue(queue, exchange, key string, args map[string]any, conn uint64, fx *effects) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.queueBindingLocked(queue, exchange, key, args, conn)
	if err != nil {
		return err
	}
	if err := checkBindingKey(b); err != nil {
		return err
	}
	return v.commitLocked(Bind{BindingDef{VHost: v.name, Source: exchange, Destination: queue, Key: key, Args: args}}, fx)
}

// unbindQueue removes a queue binding; a missing binding is not an error.
func (v *VHost) unbindQueue(queue, exchange, key string, args map[string]any, conn uint64, fx *effects) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.queueBindingLocked(queue, exchange, key, args, conn); err != nil {
		return err
	}
	return v.commitLocked(Unbind{BindingDef{VHost: v.name, Source: exchange, Destination: queue, Key: key, Args: args}}, fx)
}

// bindExchange binds destination to source (exchange-to-exchange binding,
// a RabbitMQ extension).
func (v *VHost) bindExchange(destination, source, key string, args map[string]any, fx *effects) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	b, err := v.exchangeBindingLocked(destination, source, key, args)
	if err != nil {
		return err
	}
	if err := checkBindingKey(b); err != nil {
		return err
	}
	return v.commitLocked(Bind{BindingDef{VHost: v.name, Source: source, Destination: destination, DestIsExchange: true, Key: key, Args: args}}, fx)
}

// unbindExchange removes an exchange-to-exchange binding.
func (v *VHost) unbindExchange(destination, source, key string, args map[string]any, fx *effects) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, err := v.exchangeBindingLocked(destination, source, key, args); err != nil {
		return err
	}
	return v.commitLocked(Unbind{BindingDef{VHost: v.name, Source: source, Destination: destination, DestIsExchange: true, Key: key, Args: args}}, fx)
}

// queueBindingLocked resolves the ends of a queue binding, checking that
// both exist and that conn may use the queue.
func (v *VHost) queueBindingLocked(queue, exchange, key string, args map[string]any, conn uint64) (*Binding, error) {
	q := v.queue(queue)
	if q == nil {
		return nil, v.notFoundQueue(queue)
	}
	if err := v.checkOwner(q, conn); err != nil {
		return nil, err
	}
	x, err := v.bindSource(exchange)
	if err != nil {
		return nil, err
	}
	return &Binding{Source: x, Queue: q, Key: key, Args: args}, nil
}

// exchangeBindingLocked resolves the ends of an exchange-to-exchange binding.
func (v *VHost) exchangeBindingLocked(destination, source, key string, args map[string]any) (*Binding, error) {
	src, err := v.bindSource(source)
	if err != nil {
		return nil, err
	}
	dst, err := v.bindSource(destination)
	if err != nil {
		return nil, err
	}
	return &Binding{Source: src, Exchange: dst, Key: key, Args: args}, nil
}

// bindSource returns an exchange that may take part in a binding.
func (v *VHost) bindSource(name string) (*Exchange, error) {
	x := v.exchange(name)
	if x == nil {
		return nil, v.notFoundExchange(name)
	}
	if x.isDefault {
		return nil, errorf(KindAccessRefused, "operation not permitted on the default exchange")
	}
	return x, nil
}

// addBindingLocked adds b unless an equal binding exists, reporting
// whether it did.
func (v *VHost) addBindingLocked(b *Binding) (bool, error) {
	if b.Source.kind == route.Headers {
		if err := route.ValidMatch(b.Args); err != nil {
			return false, errorf(KindPreconditionFailed, "%v", err)
		}
	}
	if hasBindingLocked(b) {
		return false, nil
	}
	// Appending leaves the elements the routing snapshot holds as they
	// are (rebuildLocked); removing copies.
	b.Source.bindings = append(b.Source.bindings, b)
	if b.Queue != nil {
		b.Queue.binds = append(b.Queue.binds, b)
	}
	if b.Exchange != nil {
		b.Exchange.inbound = append(b.Exchange.inbound, b)
	}
	b.Source.rebuildLocked()
	return true, nil
}

// hasBindingLocked reports whether a binding equal to b exists.
func hasBindingLocked(b *Binding) bool { return findBindingLocked(b) != nil }

// findBindingLocked returns the binding equal to want, or nil. It looks
// among the bindings of want's destination, not of its source: an MQTT
// fleet's 10,000 sessions bind to one exchange, each queue to a few.
func findBindingLocked(want *Binding) *Binding {
	among := want.Source.bindings
	if want.Queue != nil {
		among = want.Queue.binds
	} else if want.Exchange != nil {
		among = want.Exchange.inbound
	}
	if i := slices.IndexFunc(among, want.same); i >= 0 {
		return among[i]
	}
	return nil
}

// removeBindingLocked drops b. An auto-delete source exchange left without
// bindings is noted in fx: commitLocked deletes it (as RabbitMQ does) by a
// command of its own.
func (v *VHost) removeBindingLocked(b *Binding, fx *effects) {
	x := b.Source
	if i := slices.Index(x.bindings, b); i >= 0 {
		// A new array: the routing snapshot may share the old one.
		x.bindings = slices.Concat(x.bindings[:i], x.bindings[i+1:])
	}
	if b.Exchange != nil {
		b.Exchange.inbound = slices.DeleteFunc(b.Exchange.inbound, func(o *Binding) bool { return o == b })
	}
	if b.Queue != nil {
		if b.Queue.binds = slices.DeleteFunc(b.Queue.binds, func(o *Binding) bool { return o == b }); len(b.Queue.binds) == 0 {
			b.Queue.binds = nil
		}
	}
	x.rebuildLocked()
	if x.cfg.AutoDelete && len(x.bindings) == 0 {
		fx.emptied = append(fx.emptied, x)
	}
}

// queueBindingsLocked returns every binding whose destination is q.
func (v *VHost) queueBindingsLocked(q *Queue) []*Binding {
	return slices.Clone(q.binds)
}

// QueueBindings returns copies of q's bindings: O(q's bindings), where
// Bindings is O(all of them) — an MQTT session resumed in a connect storm
// reads its own only.
func (v *VHost) QueueBindings(q *Queue) []Binding {
	v.mu.Lock()
	defer v.mu.Unlock()
	bs := v.queueBindingsLocked(q)
	out := make([]Binding, len(bs))
	for i, b := range bs {
		out[i] = *b
	}
	return out
}

// Bindings lists every binding in the vhost.
func (v *VHost) Bindings() []Binding {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []Binding
	v.exchanges.Range(func(_, xv any) bool {
		for _, b := range xv.(*Exchange).bindings {
			out = append(out, *b)
		}
		return true
	})
	return out
}
