package meta

import (
	"fmt"
	"log/slog"

	"github.com/tern-broker/tern/internal/broker"
)

// Target is what the machine applies entries to: the node's broker.
type Target interface {
	// ApplyReplicated applies a committed command; its error goes back to
	// the proposer (a refused declare) and changes nothing.
	ApplyReplicated(c broker.Command) error
	// DefinitionsSnapshot encodes the definitions as of the last applied
	// command (broker.EncodeDefinitions); RestoreDefinitions replaces
	// them with a snapshot's.
	DefinitionsSnapshot() ([]byte, error)
	RestoreDefinitions(data []byte) error
}

// Machine is the metadata group's raftnode.StateMachine.
type Machine struct {
	target Target
	log    *slog.Logger
}

// New returns the machine that applies to target.
func New(target Target, log *slog.Logger) *Machine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Machine{target: target, log: log}
}

// Apply applies one committed entry; the result (nil or the error) goes to
// the proposer's completion. An entry that does not decode is the same
// bytes on every replica, so every replica skips it alike.
func (m *Machine) Apply(index uint64, data []byte) any {
	e, err := Decode(data)
	if err != nil {
		m.log.Error("skipping a metadata entry that does not decode", "index", index, "err", err)
		return err
	}
	if e.Command == nil {
		return nil // a barrier
	}
	if err := m.target.ApplyReplicated(e.Command); err != nil {
		return err
	}
	return nil
}

// Snapshot is the broker's definitions behind a format byte.
func (m *Machine) Snapshot() ([]byte, error) {
	raw, err := m.target.DefinitionsSnapshot()
	if err != nil {
		return nil, err
	}
	return append([]byte{snapshotV1}, raw...), nil
}

// Restore replaces the broker's definitions with a snapshot's.
func (m *Machine) Restore(data []byte) error {
	if len(data) == 0 || data[0] != snapshotV1 {
		return fmt.Errorf("meta: snapshot format %v is not %d (written by a newer version?)", data[:min(len(data), 1)], snapshotV1)
	}
	if err := m.target.RestoreDefinitions(data[1:]); err != nil {
		return fmt.Errorf("meta: snapshot: %w", err)
	}
	return nil
}

// LeaderChanged is logged by raftnode; the definitions do not depend on
// who leads.
func (m *Machine) LeaderChanged(uint64, bool) {}
