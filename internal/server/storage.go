package server

import (
	"errors"
	"fmt"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mqtt"
	"github.com/tern-broker/tern/internal/store"
)

// The store knows nothing of the broker (it imports message, record and vfs
// only); this adapter is where the two meet.
var (
	_ broker.Log       = (*store.QueueLog)(nil)
	_ broker.StreamLog = (*store.QueueLog)(nil)
	_ broker.Storage   = storage{}
)

// storage presents a store as the broker's Storage: logs as the broker's
// interfaces, definitions encoded as the snapshot document
// (broker.EncodeDefinitions) and commands as the definitions log's records
// (broker.EncodeCommand).
type storage struct{ st *store.Store }

func (s storage) QueueLog(id string) (broker.Log, error) {
	l, err := s.st.QueueLog(id)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return l, nil
}

// QueueLogExists lets the broker leave a restored queue's log unopened
// until a message comes when it never held one.
func (s storage) QueueLogExists(id string) bool { return s.st.QueueLogExists(id) }

func (s storage) StreamLog(id string, segmentSize int64) (broker.StreamLog, error) {
	l, err := s.st.StreamLog(id, segmentSize)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (s storage) DeleteQueueLog(id string) error { return s.st.DeleteQueueLog(id) }

func (s storage) SaveDefinitions(d *broker.Definitions) error {
	doc, err := broker.EncodeDefinitions(d)
	if err != nil {
		return err
	}
	return s.st.SaveDefinitions(doc)
}

func (s storage) AppendCommand(c broker.Command) (uint64, error) {
	if _, ok := c.(broker.SetLimits); ok {
		// Limits come from the configuration on every start.
		return 0, errors.New("server: command broker.SetLimits is not logged")
	}
	return s.st.AppendCommand(broker.EncodeCommand(c))
}

func (s storage) SyncCommands(seq uint64) error { return s.st.SyncCommands(seq) }

func (s storage) SnapshotDue() bool { return s.st.SnapshotDue() }

// loadDefinitions reads the store's snapshot of the definitions; none is
// an empty set. loadCommands has what was logged since.
func loadDefinitions(st *store.Store) (*broker.Definitions, error) {
	doc, err := st.LoadDefinitions()
	if err != nil {
		return nil, err
	}
	return broker.DecodeDefinitions(doc)
}

// loadCommands decodes the commands the store read from the definitions
// log. One that cannot be decoded (its checksum was good: not a torn
// write) refuses the start, naming where it is, rather than guess at the
// definitions.
func loadCommands(st *store.Store) ([]broker.Command, error) {
	recs := st.LoadCommands()
	cmds := make([]broker.Command, 0, len(recs))
	for _, r := range recs {
		c, err := broker.DecodeCommand(r.Data)
		if err != nil {
			return nil, fmt.Errorf("server: definitions log %s: record at offset %d: %w", r.File, r.Offset, err)
		}
		cmds = append(cmds, c)
	}
	return cmds, nil
}

var _ mqtt.RetainedLog = (*store.RecordLog)(nil)

// openRetained opens the store's log of MQTT retained messages.
func openRetained(st *store.Store) (*store.RecordLog, []mqtt.RetainedRecord, error) {
	return openMQTTRecords(st, "mqtt-retained")
}

// openMQTTRecords opens one of the MQTT server's record logs: retained
// messages, or persistent sessions' QoS 2 state ("mqtt-inflight").
func openMQTTRecords(st *store.Store, name string) (*store.RecordLog, []mqtt.RetainedRecord, error) {
	l, recs, err := st.RecordLog(name)
	if err != nil {
		return nil, nil, err
	}
	out := make([]mqtt.RetainedRecord, len(recs))
	for i, r := range recs {
		out[i] = mqtt.RetainedRecord{Key: r.Key, Msg: r.Msg}
	}
	return l, out, nil
}

var _ broker.DelayedLog = (*store.RecordLog)(nil)

// openDelayed opens the store's log of messages waiting in delayed-message
// exchanges; the broker takes them back with RestoreDelayed.
func openDelayed(st *store.Store) (*store.RecordLog, []broker.DelayedRecord, error) {
	l, recs, err := st.RecordLog("delayed")
	if err != nil {
		return nil, nil, err
	}
	out := make([]broker.DelayedRecord, len(recs))
	for i, r := range recs {
		out[i] = broker.DelayedRecord{Key: r.Key, Msg: r.Msg}
	}
	return l, out, nil
}
