package server

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
)

// The definitions snapshot the store keeps (definitions/snapshot-<gen>; a
// previous version's definitions.json is the same document): JSON, with
// arguments as AMQP field tables (base64) so their types (int32 vs int64,
// …) survive exactly. It is encoded here, where broker and store meet, so
// that neither knows the other.

type defsJSON struct {
	Version   int            `json:"version"`
	VHosts    []string       `json:"vhosts"`
	Exchanges []exchangeJSON `json:"exchanges"`
	Queues    []queueJSON    `json:"queues"`
	Bindings  []bindingJSON  `json:"bindings"`
}

type exchangeJSON struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Internal   bool   `json:"internal,omitempty"`
	Args       string `json:"arguments,omitempty"`
}

type queueJSON struct {
	VHost      string `json:"vhost"`
	Name       string `json:"name"`
	ID         string `json:"id"`
	AutoDelete bool   `json:"auto_delete,omitempty"`
	Args       string `json:"arguments,omitempty"`
}

type bindingJSON struct {
	VHost          string `json:"vhost"`
	Source         string `json:"source"`
	Destination    string `json:"destination"`
	DestIsExchange bool   `json:"destination_is_exchange,omitempty"`
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
		return nil, errors.New("server: definitions: truncated argument table")
	}
	return message.DecodeTable(raw[4 : 4+binary.BigEndian.Uint32(raw)])
}

// encodeDefinitions encodes d as the definitions document the store keeps.
func encodeDefinitions(d *broker.Definitions) ([]byte, error) {
	out := defsJSON{Version: 1, VHosts: d.VHosts}
	for _, x := range d.Exchanges {
		out.Exchanges = append(out.Exchanges, exchangeJSON{VHost: x.VHost, Name: x.Name, Type: x.Type,
			AutoDelete: x.AutoDelete, Internal: x.Internal, Args: encodeArgs(x.Args)})
	}
	for _, q := range d.Queues {
		out.Queues = append(out.Queues, queueJSON{VHost: q.VHost, Name: q.Name, ID: q.ID, AutoDelete: q.AutoDelete, Args: encodeArgs(q.Args)})
	}
	for _, b := range d.Bindings {
		out.Bindings = append(out.Bindings, bindingJSON{VHost: b.VHost, Source: b.Source, Destination: b.Destination,
			DestIsExchange: b.DestIsExchange, Key: b.Key, Args: encodeArgs(b.Args)})
	}
	return json.MarshalIndent(out, "", "  ")
}

// decodeDefinitions decodes the definitions document; none (nil) is an
// empty set (a fresh node).
func decodeDefinitions(raw []byte) (*broker.Definitions, error) {
	if raw == nil {
		return &broker.Definitions{}, nil
	}
	var in defsJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("server: definitions: %w", err)
	}
	d := &broker.Definitions{VHosts: in.VHosts}
	for _, x := range in.Exchanges {
		args, err := decodeArgs(x.Args)
		if err != nil {
			return nil, fmt.Errorf("server: definitions: exchange %s arguments: %w", x.Name, err)
		}
		d.Exchanges = append(d.Exchanges, broker.ExchangeDef{VHost: x.VHost, ExchangeConfig: broker.ExchangeConfig{
			Name: x.Name, Type: x.Type, Durable: true, AutoDelete: x.AutoDelete, Internal: x.Internal, Args: args}})
	}
	for _, q := range in.Queues {
		args, err := decodeArgs(q.Args)
		if err != nil {
			return nil, fmt.Errorf("server: definitions: queue %s arguments: %w", q.Name, err)
		}
		d.Queues = append(d.Queues, broker.QueueDef{VHost: q.VHost, ID: q.ID, QueueConfig: broker.QueueConfig{
			Name: q.Name, Durable: true, AutoDelete: q.AutoDelete, Args: args}})
	}
	for _, b := range in.Bindings {
		args, err := decodeArgs(b.Args)
		if err != nil {
			return nil, fmt.Errorf("server: definitions: binding arguments: %w", err)
		}
		d.Bindings = append(d.Bindings, broker.BindingDef{VHost: b.VHost, Source: b.Source, Destination: b.Destination,
			DestIsExchange: b.DestIsExchange, Key: b.Key, Args: args})
	}
	return d, nil
}
