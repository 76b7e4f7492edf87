package broker

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/tern-broker/tern/internal/message"
)

// review10 Q1: a message's record aliases its Raft entry (a batch of
// proposals); a message that outlives a snapshot takes a copy of its own
// there, so one leftover no longer keeps the whole entry alive once the
// log is compacted. The snapshot's bytes do not change.
func TestQuorumSnapshotCopiesRecordsOutOfTheirEntry(t *testing.T) {
	t.Parallel()
	m := newQuorumMachine(quorumConfig{maxLength: 1, maxBytes: -1, overflow: DropHead, deliveryLimit: -1})
	// One entry holding eight enqueue commands, as a leader's batch does;
	// x-max-length 1 keeps only the last message.
	var entry []byte
	var items [][2]int
	body := bytes.Repeat([]byte("x"), 1024)
	for i := range 8 {
		at := len(entry)
		entry = (&qcmd{kind: qcEnqueue, node: 1, record: message.AppendMessage(nil, &message.Message{Body: body, Published: int64(i + 1)})}).encode(entry)
		items = append(items, [2]int{at, len(entry)})
	}
	for i, it := range items {
		if err := m.Apply(uint64(i+1), entry[it[0]:it[1]]); err != nil {
			t.Fatal(err)
		}
	}
	if m.msgs.len() != 1 {
		t.Fatalf("%d messages, want 1", m.msgs.len())
	}
	q := m.msgs.sorted()[0]
	inEntry := func() bool {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(q.rec)))
		start := uintptr(unsafe.Pointer(unsafe.SliceData(entry)))
		return p >= start && p < start+uintptr(cap(entry))
	}
	if !inEntry() {
		t.Fatal("the record was copied at enqueue (a copy per message on every replica)")
	}
	before := snap(t, m)
	if inEntry() {
		t.Fatal("a message that outlived a snapshot still aliases its Raft entry")
	}
	if after := snap(t, m); !bytes.Equal(before, after) {
		t.Fatal("copying the record changed the snapshot")
	}
}

// review10 Q2: a record whose framing is sound but which the decoder
// refuses (a malformed header table) is refused at enqueue, on every
// replica alike, as when every replica decoded it — not queued and then
// dropped where delivered. A snapshot holding such a record (enqueued by a
// version that checked only the framing) still restores.
func TestQuorumMachineRefusesAnUndecodableRecord(t *testing.T) {
	t.Parallel()
	good := message.AppendMessage(nil, &message.Message{Body: []byte("b"), Published: 1,
		Props: message.Properties{Headers: map[string]any{"a": "b"}}})
	at := bytes.Index(good, []byte{1, 'a', 'S'})
	if at < 0 {
		t.Fatal("header field not found in the record")
	}
	bad := bytes.Clone(good)
	bad[at+2] = '?' // an unknown field type
	if _, err := message.DecodeMessage(bytes.Clone(bad)); err == nil {
		t.Fatal("the decoder accepts the damaged record")
	}

	m := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	if err, _ := m.Apply(1, (&qcmd{kind: qcEnqueue, node: 1, record: bad}).encode(nil)).(error); err == nil {
		t.Fatal("an undecodable record was enqueued")
	}
	if m.msgs.len() != 0 || m.nextID != 0 {
		t.Fatalf("the refused record left %d messages, next id %d", m.msgs.len(), m.nextID)
	}

	if err := m.Apply(2, (&qcmd{kind: qcEnqueue, node: 1, record: good}).encode(nil)); err != nil {
		t.Fatal(err)
	}
	s := snap(t, m)
	i := bytes.LastIndex(s, []byte{1, 'a', 'S'})
	s[i+2] = '?'
	r := newQuorumMachine(quorumConfig{maxLength: -1, maxBytes: -1, deliveryLimit: -1})
	if err := r.Restore(s); err != nil {
		t.Fatalf("a snapshot holding a record enqueued before the check: %v", err)
	}
	if r.msgs.len() != 1 {
		t.Fatalf("restored %d messages, want 1", r.msgs.len())
	}
}
