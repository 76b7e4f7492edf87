package broker

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tern-broker/tern/internal/flow"
)

// The command codec: one Command as bytes, for the node's definitions log
// (internal/server hands the bytes to the store) and for the cluster's
// metadata Raft log (internal/cluster encodes proposals with it). It lives
// beside the commands because both users need it and broker is the lowest
// package that knows them; the store never reads the bytes.
//
// Each record is JSON ({"op":"declare_queue","vhost":"/","name":"q",
// "id":"…","arguments":"…"}), arguments as base64 AMQP field tables like
// the snapshot's (codec_defs.go). JSON keeps the log readable with strings
// and lets a field be added without a format version; definition changes
// are rare enough that its cost does not matter.
//
// A single node logs only durable objects, so a declare's durable flag is
// implied and the fields a cluster adds (transient, exclusive, owner, node,
// a delete's id, a binding's destination_id, set_limits) are absent from its records: its log is
// byte-for-byte what it was before clusters existed.

// cmdJSON is an encoded command.
type cmdJSON struct {
	Op             string `json:"op"`
	VHost          string `json:"vhost,omitempty"`
	Name           string `json:"name,omitempty"`
	Type           string `json:"type,omitempty"`
	ID             string `json:"id,omitempty"`
	AutoDelete     bool   `json:"auto_delete,omitempty"`
	Internal       bool   `json:"internal,omitempty"`
	Source         string `json:"source,omitempty"`
	Destination    string `json:"destination,omitempty"`
	DestIsExchange bool   `json:"destination_is_exchange,omitempty"`
	DestID         string `json:"destination_id,omitempty"`
	Key            string `json:"routing_key,omitempty"`
	Args           string `json:"arguments,omitempty"`
	// Cluster only: objects a single node never logs.
	Transient bool        `json:"transient,omitempty"`
	Exclusive bool        `json:"exclusive,omitempty"`
	Owner     uint64      `json:"owner,omitempty"`
	Node      uint64      `json:"node,omitempty"`
	Limits    []limitJSON `json:"limits,omitempty"`
	// Users, permissions and limits (codec_security.go).
	Sec *secJSON `json:"security,omitempty"`
	// Policies (set_policy, clear_policy; policy.go).
	Operator   bool           `json:"operator,omitempty"`
	Pattern    string         `json:"pattern,omitempty"`
	ApplyTo    string         `json:"apply_to,omitempty"`
	Priority   int            `json:"priority,omitempty"`
	Definition map[string]any `json:"definition,omitempty"`
}

// limitJSON is a flow.Limit with its rates as strings: JSON has no NaN or
// infinity, and EncodeCommand must encode whatever it is given.
type limitJSON struct {
	VHost         string `json:"vhost"`
	User          string `json:"user,omitempty"`
	PerConnection bool   `json:"per_connection,omitempty"`
	PublishRate   string `json:"publish_rate,omitempty"`
	PublishBurst  int    `json:"publish_burst,omitempty"`
	ByteRate      string `json:"publish_bytes_rate,omitempty"`
	ByteBurst     int    `json:"publish_bytes_burst,omitempty"`
}

// EncodeCommand encodes c. Every Command encodes (the interface is sealed),
// so there is no error; SetLimits encodes too, though a node's definitions
// log refuses it (limits come from the configuration).
func EncodeCommand(c Command) []byte {
	if p, ok := c.(Proposed); ok {
		return encodeProposed(p) // meta_dedup.go
	}
	var j cmdJSON
	switch c := c.(type) {
	case AddVHost:
		j = cmdJSON{Op: "add_vhost", Name: c.Name}
	case DeclareExchange:
		j = cmdJSON{Op: "declare_exchange", VHost: c.VHost, Name: c.Name, Type: c.Type, AutoDelete: c.AutoDelete,
			Internal: c.Internal, Args: encodeArgs(c.Args), Transient: !c.Durable}
	case DeleteExchange:
		j = cmdJSON{Op: "delete_exchange", VHost: c.VHost, Name: c.Name}
	case DeclareQueue:
		j = cmdJSON{Op: "declare_queue", VHost: c.VHost, Name: c.Name, ID: c.ID, AutoDelete: c.AutoDelete, Args: encodeArgs(c.Args),
			Transient: !c.Durable, Exclusive: c.Exclusive, Owner: c.Owner, Node: c.Node}
		return appendQueueCmd(make([]byte, 0, 128+len(j.Name)+len(j.Args)), &j) // codec_queue.go
	case DeleteQueue:
		j = cmdJSON{Op: "delete_queue", VHost: c.VHost, Name: c.Name, ID: c.ID}
		return appendQueueCmd(make([]byte, 0, 96+len(j.Name)), &j)
	case Bind:
		j = bindingCmd("bind", c.BindingDef)
	case Unbind:
		j = bindingCmd("unbind", c.BindingDef)
	case SetPolicy:
		j = cmdJSON{Op: "set_policy", Operator: c.Operator, VHost: c.VHost, Name: c.Name, Pattern: c.Pattern,
			ApplyTo: c.ApplyTo, Priority: c.Priority, Definition: c.Definition}
	case ClearPolicy:
		j = cmdJSON{Op: "clear_policy", Operator: c.Operator, VHost: c.VHost, Name: c.Name}
	case SetLimits:
		j = cmdJSON{Op: "set_limits", Limits: make([]limitJSON, len(c.Limits))}
		for i, l := range c.Limits {
			j.Limits[i] = limitJSON{VHost: l.VHost, User: l.User, PerConnection: l.PerConnection, PublishRate: formatRate(l.PublishRate),
				PublishBurst: l.PublishBurst, ByteRate: formatRate(l.ByteRate), ByteBurst: l.ByteBurst}
		}
	default:
		j = encodeSecurity(c)
	}
	b, err := json.Marshal(j) // strings, bools, integers and a validated policy's finite numbers
	if err != nil {
		// A policy definition of values JSON cannot hold: never a
		// validated one. Encoded without it, it fails to apply.
		j.Definition = nil
		b, _ = json.Marshal(j)
	}
	return b
}

func bindingCmd(op string, b BindingDef) cmdJSON {
	return cmdJSON{Op: op, VHost: b.VHost, Source: b.Source, Destination: b.Destination,
		DestIsExchange: b.DestIsExchange, DestID: b.DestID, Key: b.Key, Args: encodeArgs(b.Args)}
}

func formatRate(f float64) string {
	if f == 0 {
		return ""
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func parseRate(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseFloat(s, 64)
}

// DecodeCommand decodes what EncodeCommand encoded.
func DecodeCommand(payload []byte) (Command, error) {
	if c, ok, err := decodeProposed(payload); ok {
		return c, err // meta_dedup.go
	}
	var j cmdJSON
	if err := json.Unmarshal(payload, &j); err != nil {
		return nil, fmt.Errorf("undecodable command: %w", err)
	}
	args, err := decodeArgs(j.Args)
	if err != nil {
		return nil, fmt.Errorf("command %s arguments: %w", j.Op, err)
	}
	switch j.Op {
	case "add_vhost":
		return AddVHost{Name: j.Name}, nil
	case "declare_exchange":
		return DeclareExchange{ExchangeDef: ExchangeDef{VHost: j.VHost, ExchangeConfig: ExchangeConfig{
			Name: j.Name, Type: j.Type, Durable: !j.Transient, AutoDelete: j.AutoDelete, Internal: j.Internal, Args: args}}}, nil
	case "delete_exchange":
		return DeleteExchange{VHost: j.VHost, Name: j.Name}, nil
	case "declare_queue":
		return DeclareQueue{QueueDef: QueueDef{VHost: j.VHost, ID: j.ID, Node: j.Node, QueueConfig: QueueConfig{
			Name: j.Name, Durable: !j.Transient, AutoDelete: j.AutoDelete, Exclusive: j.Exclusive, Owner: j.Owner, Args: args}}}, nil
	case "delete_queue":
		return DeleteQueue{VHost: j.VHost, Name: j.Name, ID: j.ID}, nil
	case "bind", "unbind":
		b := BindingDef{VHost: j.VHost, Source: j.Source, Destination: j.Destination,
			DestIsExchange: j.DestIsExchange, DestID: j.DestID, Key: j.Key, Args: args}
		if j.Op == "bind" {
			return Bind{BindingDef: b}, nil
		}
		return Unbind{BindingDef: b}, nil
	case "set_policy":
		return SetPolicy{Operator: j.Operator, Policy: Policy{VHost: j.VHost, Name: j.Name, Pattern: j.Pattern,
			ApplyTo: j.ApplyTo, Priority: j.Priority, Definition: normalizeDefinition(j.Definition)}}, nil
	case "clear_policy":
		return ClearPolicy{Operator: j.Operator, VHost: j.VHost, Name: j.Name}, nil
	case "set_limits":
		ls := make([]flow.Limit, len(j.Limits))
		for i, l := range j.Limits {
			pr, err := parseRate(l.PublishRate)
			if err != nil {
				return nil, fmt.Errorf("command set_limits: publish_rate: %w", err)
			}
			br, err := parseRate(l.ByteRate)
			if err != nil {
				return nil, fmt.Errorf("command set_limits: publish_bytes_rate: %w", err)
			}
			ls[i] = flow.Limit{VHost: l.VHost, User: l.User, PerConnection: l.PerConnection, PublishRate: pr,
				PublishBurst: l.PublishBurst, ByteRate: br, ByteBurst: l.ByteBurst}
		}
		return SetLimits{Limits: ls}, nil
	}
	if c, ok := decodeSecurity(j); ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown command %q", j.Op)
}
