package broker

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/message"
)

// The definitions document: the snapshot a node's store keeps
// (definitions/snapshot-<gen>; a previous version's definitions.json is
// the same document) and, in a cluster, the metadata group's snapshot
// (DefinitionsSnapshot). JSON, with arguments as AMQP field tables
// (base64) so their types (int32 vs int64, …) survive exactly. The store
// keeps the bytes without reading them. As for commands (codec.go), the
// fields only a cluster's snapshot holds (transient and exclusive objects,
// an exclusive queue's owner, a queue's node) are absent for a single
// node's durable objects, so its document is what it always was.

type defsJSON struct {
	Version   int            `json:"version"`
	VHosts    []string       `json:"vhosts"`
	Exchanges []exchangeJSON `json:"exchanges"`
	Queues    []queueJSON    `json:"queues"`
	Bindings  []bindingJSON  `json:"bindings"`
	Security  *secDefsJSON   `json:"security,omitempty"`
	// Absent when there are none: a node without policies writes what
	// it always wrote.
	Policies         []Policy `json:"policies,omitempty"`
	OperatorPolicies []Policy `json:"operator_policies,omitempty"`
}

type exchangeJSON struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	Args       string `json:"arguments,omitempty"`
	Transient  bool   `json:"transient,omitempty"`
}

type queueJSON struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	ID         string `json:"id"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Args       string `json:"arguments,omitempty"`
	Transient  bool   `json:"transient,omitempty"`
	Exclusive  bool   `json:"exclusive,omitempty"`
	Owner      uint64 `json:"owner,omitempty"`
	Node       uint64 `json:"node,omitempty"`
}

type bindingJSON struct {
	VHost          string `json:"vhost"`
	Source         string `json:"source"`
	Destination    string `json:"destination"`
	DestIsExchange bool   `json:"destination_is_exchange,omitempty"`
	DestID         string `json:"destination_id,omitempty"`
	Key            string `json:"routing_key"`
	Args           string `json:"arguments,omitempty"`
}

func encodeArgs(a map[string]any) string {
	if len(a) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(message.AppendTable(nil, a))
}

func decodeArgs(s string) (map[string]any, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(raw) < 4 || uint64(binary.BigEndian.Uint32(raw)) > uint64(len(raw)-4) {
		return nil, errors.New("broker: definitions: truncated argument table")
	}
	return message.DecodeTable(raw[4 : 4+binary.BigEndian.Uint32(raw)])
}

// EncodeDefinitions encodes d as the definitions document.
func EncodeDefinitions(d *Definitions) ([]byte, error) {
	out := defsJSON{Version: 1, VHosts: d.VHosts, Security: encodeSecDefs(d), Policies: d.Policies, OperatorPolicies: d.OperatorPolicies}
	for _, x := range d.Exchanges {
		out.Exchanges = append(out.Exchanges, exchangeJSON{VHost: x.VHost, Name: x.Name, Type: x.Type,
			AutoDelete: x.AutoDelete, Internal: x.Internal, Args: encodeArgs(x.Args), Transient: !x.Durable})
	}
	for _, q := range d.Queues {
		out.Queues = append(out.Queues, queueJSON{VHost: q.VHost, Name: q.Name, ID: q.ID, AutoDelete: q.AutoDelete, Args: encodeArgs(q.Args),
			Transient: !q.Durable, Exclusive: q.Exclusive, Owner: q.Owner, Node: q.Node})
	}
	for _, b := range d.Bindings {
		out.Bindings = append(out.Bindings, bindingJSON{VHost: b.VHost, Source: b.Source, Destination: b.Destination,
			DestIsExchange: b.DestIsExchange, DestID: b.DestID, Key: b.Key, Args: encodeArgs(b.Args)})
	}
	// Compact: the snapshot of a node with many queues is encoded while
	// every vhost's lock is held (Broker.snapshot), and indenting took
	// about as long as the encoding itself.
	return json.Marshal(out)
}

// DecodeDefinitions decodes the definitions document; none (nil) is an
// empty set (a fresh node).
func DecodeDefinitions(raw []byte) (*Definitions, error) {
	if raw == nil {
		return &Definitions{}, nil
	}
	var in defsJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("broker: definitions: %w", err)
	}
	d := &Definitions{VHosts: in.VHosts, Policies: in.Policies, OperatorPolicies: in.OperatorPolicies}
	decodeSecDefs(in.Security, d)
	for _, ps := range [][]Policy{d.Policies, d.OperatorPolicies} {
		for i := range ps {
			ps[i].Definition = normalizeDefinition(ps[i].Definition)
		}
	}
	for _, x := range in.Exchanges {
		args, err := decodeArgs(x.Args)
		if err != nil {
			return nil, fmt.Errorf("broker: definitions: exchange %s arguments: %w", x.Name, err)
		}
		d.Exchanges = append(d.Exchanges, ExchangeDef{VHost: x.VHost, ExchangeConfig: ExchangeConfig{
			Name: x.Name, Type: x.Type, Durable: !x.Transient, AutoDelete: x.AutoDelete, Internal: x.Internal, Args: args}})
	}
	for _, q := range in.Queues {
		args, err := decodeArgs(q.Args)
		if err != nil {
			return nil, fmt.Errorf("broker: definitions: queue %s arguments: %w", q.Name, err)
		}
		d.Queues = append(d.Queues, QueueDef{VHost: q.VHost, ID: q.ID, Node: q.Node, QueueConfig: QueueConfig{
			Name: q.Name, Durable: !q.Transient, AutoDelete: q.AutoDelete, Exclusive: q.Exclusive, Owner: q.Owner, Args: args}})
	}
	for _, b := range in.Bindings {
		args, err := decodeArgs(b.Args)
		if err != nil {
			return nil, fmt.Errorf("broker: definitions: binding arguments: %w", err)
		}
		d.Bindings = append(d.Bindings, BindingDef{VHost: b.VHost, Source: b.Source, Destination: b.Destination,
			DestIsExchange: b.DestIsExchange, DestID: b.DestID, Key: b.Key, Args: args})
	}
	return d, nil
}
