package chaos

import "testing"

// The runner's QoS 2 receiver absorbs only a DUP resend of a packet id it
// holds for the same value; every other PUBLISH is a delivery, so a broker
// that sends a message again under a new packet id, or without DUP, is
// caught by the checker's exactly-once verdict.
func TestQoS2ReceiverAbsorbsOnlyResendsOfAHeldPacketID(t *testing.T) {
	q := newQoS2Receiver()
	steps := []struct {
		pid     uint16
		dup     bool
		value   string
		deliver bool
	}{
		{1, false, "a", true}, // first transmission
		{1, true, "a", false}, // PUBREC lost: the resend is absorbed
		{2, true, "a", true},  // the same message under another id: a duplicate delivery
		{1, false, "a", true}, // no DUP: the id was released, a new delivery
		{1, true, "b", true},  // DUP of an id held for another value: delivered
		{3, true, "c", true},  // DUP of an id never seen (the first copy was lost in transit)
		{3, true, "c", false}, // and its resend
	}
	for i, s := range steps {
		if got := q.receive(s.pid, s.dup, s.value); got != s.deliver {
			t.Fatalf("step %d (%+v): deliver %v", i, s, got)
		}
	}
}
