package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/vfs"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// definitionsFile holds the durable definitions as JSON, replaced
// atomically on every change. Arguments are AMQP field tables (base64) so
// their types (int32 vs int64, …) survive exactly.
const definitionsFile = "definitions.json"

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
	return base64.StdEncoding.EncodeToString(amqp091.AppendTable(nil, a))
}

func decodeArgs(s string) (map[string]any, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	d := amqp091.NewDecoder(raw)
	t := d.Table()
	return t, d.Err()
}

// SaveDefinitions implements broker.Storage.
func (s *Store) SaveDefinitions(d *broker.Definitions) error {
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
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return vfs.WriteFileAtomic(s.fs, filepath.Join(s.dir, definitionsFile), raw)
}

// LoadDefinitions reads the stored definitions; a missing file is an empty
// set (a fresh node).
func (s *Store) LoadDefinitions() (*broker.Definitions, error) {
	raw, err := vfs.ReadFile(s.fs, filepath.Join(s.dir, definitionsFile))
	if errors.Is(err, vfs.ErrNotExist) {
		return &broker.Definitions{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var in defsJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("store: %s: %w", definitionsFile, err)
	}
	d := &broker.Definitions{VHosts: in.VHosts}
	for _, x := range in.Exchanges {
		args, err := decodeArgs(x.Args)
		if err != nil {
			return nil, fmt.Errorf("store: exchange %s arguments: %w", x.Name, err)
		}
		d.Exchanges = append(d.Exchanges, broker.ExchangeDef{VHost: x.VHost, ExchangeConfig: broker.ExchangeConfig{
			Name: x.Name, Type: x.Type, Durable: true, AutoDelete: x.AutoDelete, Internal: x.Internal, Args: args}})
	}
	for _, q := range in.Queues {
		args, err := decodeArgs(q.Args)
		if err != nil {
			return nil, fmt.Errorf("store: queue %s arguments: %w", q.Name, err)
		}
		d.Queues = append(d.Queues, broker.QueueDef{VHost: q.VHost, ID: q.ID, QueueConfig: broker.QueueConfig{
			Name: q.Name, Durable: true, AutoDelete: q.AutoDelete, Args: args}})
	}
	for _, b := range in.Bindings {
		args, err := decodeArgs(b.Args)
		if err != nil {
			return nil, fmt.Errorf("store: binding arguments: %w", err)
		}
		d.Bindings = append(d.Bindings, broker.BindingDef{VHost: b.VHost, Source: b.Source, Destination: b.Destination,
			DestIsExchange: b.DestIsExchange, Key: b.Key, Args: args})
	}
	return d, nil
}
