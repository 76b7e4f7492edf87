package server

import (
	"encoding/json"
	"fmt"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/store"
)

// The definitions log's records: one broker.Command each, as JSON
// ({"op":"declare_queue","vhost":"/","name":"q","id":"…","arguments":"…"}),
// arguments as base64 AMQP field tables like the snapshot's. JSON keeps the
// log readable with strings and lets a field be added without a format
// version; definition changes are rare enough that its cost does not
// matter. The store frames, checksums and syncs the bytes; it never reads
// them.

// cmdJSON is a logged command. Only durable objects are logged, so a
// declare's durable flag is implied.
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
	Key            string `json:"routing_key,omitempty"`
	Args           string `json:"arguments,omitempty"`
}

// encodeCommand encodes c as a definitions log record.
func encodeCommand(c broker.Command) ([]byte, error) {
	var j cmdJSON
	switch c := c.(type) {
	case broker.AddVHost:
		j = cmdJSON{Op: "add_vhost", Name: c.Name}
	case broker.DeclareExchange:
		j = cmdJSON{Op: "declare_exchange", VHost: c.VHost, Name: c.Name, Type: c.Type, AutoDelete: c.AutoDelete,
			Internal: c.Internal, Args: encodeArgs(c.Args)}
	case broker.DeleteExchange:
		j = cmdJSON{Op: "delete_exchange", VHost: c.VHost, Name: c.Name}
	case broker.DeclareQueue:
		j = cmdJSON{Op: "declare_queue", VHost: c.VHost, Name: c.Name, ID: c.ID, AutoDelete: c.AutoDelete, Args: encodeArgs(c.Args)}
	case broker.DeleteQueue:
		j = cmdJSON{Op: "delete_queue", VHost: c.VHost, Name: c.Name}
	case broker.Bind:
		j = bindingCmd("bind", c.BindingDef)
	case broker.Unbind:
		j = bindingCmd("unbind", c.BindingDef)
	default:
		return nil, fmt.Errorf("server: command %T is not logged", c)
	}
	return json.Marshal(j)
}

func bindingCmd(op string, b broker.BindingDef) cmdJSON {
	return cmdJSON{Op: op, VHost: b.VHost, Source: b.Source, Destination: b.Destination,
		DestIsExchange: b.DestIsExchange, Key: b.Key, Args: encodeArgs(b.Args)}
}

// decodeCommand decodes a definitions log record.
func decodeCommand(payload []byte) (broker.Command, error) {
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
		return broker.AddVHost{Name: j.Name}, nil
	case "declare_exchange":
		return broker.DeclareExchange{ExchangeDef: broker.ExchangeDef{VHost: j.VHost, ExchangeConfig: broker.ExchangeConfig{
			Name: j.Name, Type: j.Type, Durable: true, AutoDelete: j.AutoDelete, Internal: j.Internal, Args: args}}}, nil
	case "delete_exchange":
		return broker.DeleteExchange{VHost: j.VHost, Name: j.Name}, nil
	case "declare_queue":
		return broker.DeclareQueue{QueueDef: broker.QueueDef{VHost: j.VHost, ID: j.ID, QueueConfig: broker.QueueConfig{
			Name: j.Name, Durable: true, AutoDelete: j.AutoDelete, Args: args}}}, nil
	case "delete_queue":
		return broker.DeleteQueue{VHost: j.VHost, Name: j.Name}, nil
	case "bind", "unbind":
		b := broker.BindingDef{VHost: j.VHost, Source: j.Source, Destination: j.Destination,
			DestIsExchange: j.DestIsExchange, Key: j.Key, Args: args}
		if j.Op == "bind" {
			return broker.Bind{BindingDef: b}, nil
		}
		return broker.Unbind{BindingDef: b}, nil
	}
	return nil, fmt.Errorf("unknown command %q", j.Op)
}

// loadCommands decodes the commands the store read from the definitions
// log. One that cannot be decoded (its checksum was good: not a torn
// write) refuses the start, naming where it is, rather than guess at the
// definitions.
func loadCommands(st *store.Store) ([]broker.Command, error) {
	recs := st.LoadCommands()
	cmds := make([]broker.Command, 0, len(recs))
	for _, r := range recs {
		c, err := decodeCommand(r.Data)
		if err != nil {
			return nil, fmt.Errorf("server: definitions log %s: record at offset %d: %w", r.File, r.Offset, err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}
