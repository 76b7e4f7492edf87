package mqtt

import (
	"slices"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// fakeSessionLog records calls and holds completions until the test
// makes them durable.
type fakeSessionLog struct {
	calls   []string
	pending []func()
}

func (f *fakeSessionLog) Put(key string, _ *message.Message, done message.Completion, token uint64) error {
	f.calls = append(f.calls, "put "+key)
	f.pending = append(f.pending, func() { done.Durable(token, nil) })
	return nil
}

func (f *fakeSessionLog) Remove(key string) { f.calls = append(f.calls, "remove "+key) }

func (f *fakeSessionLog) durable() {
	p := f.pending
	f.pending = nil
	for _, fn := range p {
		fn()
	}
}

// A completed QoS 2 message's PUBREC record is removed only once a barrier
// written after the queue's ack is durable, never before; the PUBREL waits
// for the record; an idle session's entry goes once nothing is left.
func TestSessionRecordsRemovedAfterTheBarrier(t *testing.T) {
	log := &fakeSessionLog{}
	s := newSessions(log, nil)
	st := s.attach("dev", "q1", 1)
	relSent := false
	s.release("dev", st, 1, "q1", 5, 42, completionFunc(func(uint64, error) { relSent = true }), 0)
	if relSent {
		t.Fatal("PUBREL before its record is durable")
	}
	log.durable()
	if !relSent || !st.isReleased("q1", 5, 42) || st.isReleased("q1", 5, 43) || st.isReleased("q2", 5, 42) {
		t.Fatal("released state wrong")
	}
	s.complete("dev", st, 5)
	s.complete("dev", st, 5) // a second PUBCOMP changes nothing
	if slices.Contains(log.calls, "remove "+outKey("dev", 5)) {
		t.Fatal("record removed before the barrier is durable")
	}
	s.detach("dev", st, 1, nil)
	if s.m["dev"] == nil {
		t.Fatal("entry dropped while its barrier is pending")
	}
	log.durable()
	want := []string{"put " + outKey("dev", 5), "put " + barrierKey("dev"), "remove " + outKey("dev", 5), "remove " + barrierKey("dev")}
	if !slices.Equal(log.calls, want) {
		t.Fatalf("calls %q, want %q", log.calls, want)
	}
	if s.m["dev"] != nil {
		t.Fatal("an idle session without state kept its entry")
	}

	// Recovered state: a record of another queue is dropped at attach.
	log.calls = nil
	s = newSessions(log, []RetainedRecord{
		{Key: outKey("dev", 7), Msg: &message.Message{Body: []byte("old-queue"), Published: 1}},
		{Key: inKey("dev", 3), Msg: &message.Message{}},
		{Key: barrierKey("dev"), Msg: &message.Message{}},
	})
	st = s.attach("dev", "new-queue", 1)
	if st.isReleased("old-queue", 7, 1) || st.inbound[3] != relRecovered {
		t.Fatalf("recovered state wrong: %+v %+v", st.released, st.inbound)
	}
	if !slices.Contains(log.calls, "remove "+outKey("dev", 7)) || !slices.Contains(log.calls, "remove "+barrierKey("dev")) {
		t.Fatalf("stale records kept: %q", log.calls)
	}
}
