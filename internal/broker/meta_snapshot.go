package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// DefinitionsSnapshot returns the node's replicated definitions — every
// vhost, exchange, queue (transient and exclusive ones included, with
// their nodes and owners) and binding the metadata group applied — as the
// definitions document (EncodeDefinitions), for the metadata group's
// snapshot. The bytes depend only on the definitions: vhosts, exchanges
// and queues in name order, bindings by source exchange name and then in
// the order they were made. Direct reply-to pseudo queues, which are this
// node's alone, are left out, as are the built-in exchanges (every vhost
// has them) but not their bindings.
func (b *Broker) DefinitionsSnapshot() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := make([]string, 0, len(b.vhosts))
	for n := range b.vhosts {
		names = append(names, n)
	}
	sort.Strings(names)
	d := &Definitions{}
	for _, n := range names {
		v := b.vhosts[n]
		v.mu.Lock()
		v.replicatedDefinitionsLocked(d)
		v.mu.Unlock()
	}
	b.securityDefinitions(d)
	doc, err := EncodeDefinitions(d)
	if err != nil {
		return nil, err
	}
	// The proposals applied last follow as a second JSON value, so a
	// node restoring this snapshot skips the same copies (meta_dedup.go).
	if ids := b.meta.applied.encode(); ids != nil {
		tail, _ := json.Marshal(snapshotProposals{Proposals: ids})
		doc = append(append(doc, '\n'), tail...)
	}
	return doc, nil
}

// replicatedDefinitionsLocked adds the vhost's replicated objects to d in
// DefinitionsSnapshot's order. v.mu is held.
func (v *VHost) replicatedDefinitionsLocked(d *Definitions) {
	d.VHosts = append(d.VHosts, v.name)
	d.Policies = append(d.Policies, v.policiesLocked(false)...)
	d.OperatorPolicies = append(d.OperatorPolicies, v.policiesLocked(true)...)
	var xs []*Exchange
	v.exchanges.Range(func(_, xv any) bool {
		xs = append(xs, xv.(*Exchange))
		return true
	})
	sort.Slice(xs, func(i, j int) bool { return xs[i].cfg.Name < xs[j].cfg.Name })
	for _, x := range xs {
		if !x.isDefault && !reservedName(x.cfg.Name) {
			d.Exchanges = append(d.Exchanges, ExchangeDef{VHost: v.name, ExchangeConfig: x.cfg})
		}
	}
	for _, x := range xs {
		for _, bd := range x.bindings {
			def := BindingDef{VHost: v.name, Source: x.cfg.Name, Key: bd.Key, Args: bd.Args}
			if bd.Queue != nil {
				if bd.Queue.cfg.Internal {
					continue
				}
				def.Destination, def.DestID = bd.Queue.cfg.Name, bd.Queue.id
			} else {
				def.Destination, def.DestIsExchange = bd.Exchange.cfg.Name, true
			}
			d.Bindings = append(d.Bindings, def)
		}
	}
	var qs []QueueDef
	for _, q := range v.queues.all() {
		if !q.cfg.Internal {
			qs = append(qs, QueueDef{VHost: v.name, ID: q.id, Node: q.node, QueueConfig: q.cfg})
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	d.Queues = append(d.Queues, qs...)
}

// RestoreDefinitions makes the node's definitions those of a snapshot
// DefinitionsSnapshot took: the metadata group restoring its state at
// start-up or catching up from a leader's snapshot. What the node has that
// the snapshot does not — bindings, queues (or a queue of the name with
// another id), exchanges (or one of the name declared otherwise) — is
// deleted first, as ApplyReplicated would delete it; then what the
// snapshot has is declared and bound, which keeps what exists. A vhost
// the snapshot lacks is deleted (DeleteVHost); the users, permissions and
// limits become the snapshot's. Log entries after the
// snapshot are then applied with ApplyReplicated; entries the snapshot
// already holds may be applied again harmlessly.
func (b *Broker) RestoreDefinitions(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var doc json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("broker: definitions: %w", err)
	}
	var sp snapshotProposals
	if err := dec.Decode(&sp); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("broker: snapshot's proposals: %w", err)
	}
	if err := b.meta.applied.reset(sp.Proposals); err != nil {
		return err
	}
	d, err := DecodeDefinitions(doc)
	if err != nil {
		return err
	}
	var cmds []Command
	want := map[string]bool{}
	for _, name := range d.VHosts {
		want[name] = true
	}
	for _, v := range b.VHosts() {
		if !want[v.name] {
			cmds = append(cmds, DeleteVHost{Name: v.name})
			continue
		}
		v.mu.Lock()
		cmds = append(cmds, v.staleLocked(d)...)
		v.mu.Unlock()
	}
	for _, name := range d.VHosts {
		cmds = append(cmds, AddVHost{Name: name})
	}
	cmds = append(cmds, policyCommands(d)...)
	for _, x := range d.Exchanges {
		cmds = append(cmds, DeclareExchange{x})
	}
	for _, q := range d.Queues {
		cmds = append(cmds, DeclareQueue{q})
	}
	for _, bd := range d.Bindings {
		cmds = append(cmds, Bind{bd})
	}
	b.users.Reset() // the snapshot's users, permissions and limits replace this node's
	cmds = append(cmds, securityCommands(d)...)
	for _, c := range cmds {
		if err := b.ApplyReplicated(c); err != nil {
			return fmt.Errorf("broker: restoring definitions: %T: %w", c, err)
		}
	}
	return nil
}

// staleLocked returns the commands that delete what the vhost has and d
// does not: bindings first, then queues, then exchanges. v.mu is held.
func (v *VHost) staleLocked(d *Definitions) []Command {
	have := &Definitions{}
	v.replicatedDefinitionsLocked(have)
	wantX := map[string][]byte{}
	for _, x := range d.Exchanges {
		if x.VHost == v.name {
			wantX[x.Name] = EncodeCommand(DeclareExchange{x})
		}
	}
	wantQ := map[string]string{}
	for _, q := range d.Queues {
		if q.VHost == v.name {
			wantQ[q.Name] = q.ID
		}
	}
	wantB := map[string]bool{}
	for _, bd := range d.Bindings {
		if bd.VHost == v.name {
			wantB[string(EncodeCommand(Bind{bd}))] = true
		}
	}
	out := stalePolicies(v.name, have, d)
	for _, bd := range have.Bindings {
		if !wantB[string(EncodeCommand(Bind{bd}))] {
			out = append(out, Unbind{bd})
		}
	}
	for _, q := range have.Queues {
		if id, ok := wantQ[q.Name]; !ok || id != q.ID {
			out = append(out, DeleteQueue{VHost: v.name, Name: q.Name, ID: q.ID})
		}
	}
	for _, x := range have.Exchanges {
		if want, ok := wantX[x.Name]; !ok || !bytes.Equal(want, EncodeCommand(DeclareExchange{x})) {
			out = append(out, DeleteExchange{VHost: v.name, Name: x.Name})
		}
	}
	return out
}
