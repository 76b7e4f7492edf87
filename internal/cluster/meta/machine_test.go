package meta

import (
	"errors"
	"testing"

	"github.com/tern-broker/tern/internal/broker"
)

type target struct {
	applied  []broker.Command
	restored []byte
	err      error
}

func (t *target) ApplyReplicated(c broker.Command) error {
	if t.err != nil {
		return t.err
	}
	t.applied = append(t.applied, c)
	return nil
}

func (t *target) DefinitionsSnapshot() ([]byte, error) { return []byte(`{"version":1}`), nil }

func (t *target) RestoreDefinitions(data []byte) error {
	t.restored = data
	return nil
}

func TestMachine(t *testing.T) {
	tg := &target{}
	m := New(tg, nil)
	if res := m.Apply(1, EncodeBarrier()); res != nil {
		t.Fatalf("barrier: %v", res)
	}
	if res := m.Apply(2, EncodeCommand(broker.AddVHost{Name: "v"})); res != nil {
		t.Fatalf("command: %v", res)
	}
	if len(tg.applied) != 1 || tg.applied[0] != (broker.AddVHost{Name: "v"}) {
		t.Fatalf("applied %v", tg.applied)
	}
	if res, ok := m.Apply(3, []byte{77}).(error); !ok || res == nil {
		t.Fatalf("an unknown entry kind: %v", res)
	}
	tg.err = errors.New("refused")
	if res := m.Apply(4, EncodeCommand(broker.AddVHost{Name: "w"})); res != tg.err {
		t.Fatalf("the target's error: %v", res)
	}
	snap, err := m.Snapshot()
	if err != nil || snap[0] != snapshotV1 {
		t.Fatalf("snapshot %q %v", snap, err)
	}
	if err := m.Restore(snap); err != nil || string(tg.restored) != `{"version":1}` {
		t.Fatalf("restore: %v %q", err, tg.restored)
	}
	for _, bad := range [][]byte{nil, {2, '{'}} {
		if err := m.Restore(bad); err == nil {
			t.Fatalf("snapshot %q restored", bad)
		}
	}
}
