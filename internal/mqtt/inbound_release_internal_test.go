package mqtt

import (
	"slices"
	"testing"
)

// An inbound QoS 2 packet id's PUBCOMP goes only once its record's removal
// is durable (a barrier written after it): sent earlier, a crash could
// recover the id, and the client's DUP resend of a new message reusing it
// would be taken for the old one's and lost.
func TestInboundReleasePUBCOMPWaitsForDurableRemoval(t *testing.T) {
	log := &fakeSessionLog{}
	s := newSessions(log, nil)
	sent := false
	s.inboundReleased("dev", 4, func(err error) {
		if err != nil {
			t.Errorf("release: %v", err)
		}
		sent = true
	})
	if sent {
		t.Fatal("PUBCOMP before the id's removal is durable")
	}
	log.durable()
	if !sent {
		t.Fatal("no PUBCOMP once the removal is durable")
	}
	want := []string{"remove " + inKey("dev", 4), "put " + barrierKey("dev"), "remove " + barrierKey("dev")}
	if !slices.Equal(log.calls, want) {
		t.Fatalf("calls %q, want %q", log.calls, want)
	}
}
