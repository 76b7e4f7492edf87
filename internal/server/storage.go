package server

import (
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mqtt"
	"github.com/tern-broker/tern/internal/store"
)

// The store knows nothing of the broker (it imports message and vfs
// only); this adapter is where the two meet.
var (
	_ broker.Log       = (*store.QueueLog)(nil)
	_ broker.StreamLog = (*store.QueueLog)(nil)
	_ broker.Storage   = storage{}
)

// storage presents a store as the broker's Storage: logs as the broker's
// interfaces, definitions encoded as the snapshot document
// (definitions.go) and commands as the definitions log's records
// (commands.go).
type storage struct{ st *store.Store }

func (s storage) QueueLog(id string) (broker.Log, error) {
	l, err := s.st.QueueLog(id)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return l, nil
}

func (s storage) StreamLog(id string, segmentSize int64) (broker.StreamLog, error) {
	l, err := s.st.StreamLog(id, segmentSize)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (s storage) DeleteQueueLog(id string) error { return s.st.DeleteQueueLog(id) }

func (s storage) SaveDefinitions(d *broker.Definitions) error {
	doc, err := encodeDefinitions(d)
	if err != nil {
		return err
	}
	return s.st.SaveDefinitions(doc)
}

func (s storage) AppendCommand(c broker.Command) (uint64, error) {
	rec, err := encodeCommand(c)
	if err != nil {
		return 0, err
	}
	return s.st.AppendCommand(rec)
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
	return decodeDefinitions(doc)
}

var _ mqtt.RetainedLog = (*store.RecordLog)(nil)

// openRetained opens the store's log of MQTT retained messages.
func openRetained(st *store.Store) (*store.RecordLog, []mqtt.RetainedRecord, error) {
	l, recs, err := st.RecordLog("mqtt-retained")
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
