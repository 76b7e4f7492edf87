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

// definitionsFile is where versions before the definitions log kept the
// whole definitions, rewritten on every change; it is read once, written
// as the first snapshot and removed (see migrateDefinitions). Arguments are
// AMQP field tables (base64) so their types (int32 vs int64, …) survive
// exactly; the snapshot and the log's commands keep them the same way.
const definitionsFile = "definitions.json"

// defsJSON is a snapshot (version 2) or a previous version's
// definitions.json (version 1, no generation).
type defsJSON struct {
	Version int `json:"version"`
	// Generation is the log that continues this snapshot.
	Generation uint64         `json:"generation,omitempty"`
	VHosts     []string       `json:"vhosts"`
	Exchanges  []exchangeJSON `json:"exchanges"`
	Queues     []queueJSON    `json:"queues"`
	Bindings   []bindingJSON  `json:"bindings"`
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

func encodeSnapshot(d *broker.Definitions, gen uint64) ([]byte, error) {
	out := defsJSON{Version: 2, Generation: gen, VHosts: d.VHosts}
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

// readSnapshot reads the snapshot; nil without one (a fresh node).
func readSnapshot(fsys vfs.FS, dir string) (*defsJSON, error) {
	raw, err := vfs.ReadFile(fsys, filepath.Join(dir, snapshotFile))
	if errors.Is(err, vfs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var in defsJSON
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("store: %s: %w", snapshotFile, err)
	}
	if in.Version != 2 || in.Generation == 0 {
		return nil, fmt.Errorf("store: %s: unknown version %d or generation %d", snapshotFile, in.Version, in.Generation)
	}
	return &in, nil
}

// migrateDefinitions turns a previous version's definitions.json into the
// first snapshot: read once, written as a snapshot (durably), then removed.
// A crash between the two leaves both; the snapshot wins and the old file
// is removed next time.
func migrateDefinitions(fsys vfs.FS, dataDir, dir string) error {
	old := filepath.Join(dataDir, definitionsFile)
	raw, err := vfs.ReadFile(fsys, old)
	if errors.Is(err, vfs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	snap, err := readSnapshot(fsys, dir)
	if err != nil {
		return err
	}
	if snap == nil {
		var in defsJSON
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("store: %s: %w", definitionsFile, err)
		}
		in.Version, in.Generation = 2, 1
		out, err := json.MarshalIndent(in, "", "  ")
		if err != nil {
			return err
		}
		if err := vfs.WriteFileAtomic(fsys, filepath.Join(dir, snapshotFile), out); err != nil {
			return fmt.Errorf("store: migrating %s: %w", definitionsFile, err)
		}
	}
	if err := fsys.Remove(old); err != nil {
		return fmt.Errorf("store: migrating %s: %w", definitionsFile, err)
	}
	return fsys.SyncDir(dataDir)
}

// LoadDefinitions reads the snapshot; without one the set is empty (a
// fresh node). LoadCommands has what was logged since.
func (s *Store) LoadDefinitions() (*broker.Definitions, error) {
	in, err := readSnapshot(s.fs, s.defs.dir)
	if err != nil {
		return nil, err
	}
	if in == nil {
		return &broker.Definitions{}, nil
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

// RemoveOrphanLogs removes the queue logs no definition names: a queue
// whose deletion was durable when the node stopped, before its files went
// (the broker removes them only after the DeleteQueue command is synced,
// so a crash in between leaves them). live holds every durable queue's id;
// call it after the definitions are recovered, before clients connect.
func (s *Store) RemoveOrphanLogs(live map[string]bool) (int, error) {
	names, err := s.fs.List(filepath.Join(s.dir, "queues"))
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	removed := 0
	for _, id := range names {
		s.mu.Lock()
		_, open := s.logs[id]
		s.mu.Unlock()
		if live[id] || open {
			continue
		}
		s.log.Info("removing the log of a deleted queue", "queue_id", id)
		if err := s.DeleteQueueLog(id); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
