package mqtt

import "testing"

// A taken-over connection whose teardown runs after the new connection
// took the session's QoS 2 state up changes nothing in it: the state stays
// the session's (not dropped from the map, not marked detached, its
// inbound ids not overwritten), and the old connection cannot record a
// PUBREC in it; a third connection finds the new one's PUBREC state.
func TestSessionLateDetachOfTakenOverConnectionKeepsState(t *testing.T) {
	s := newSessions(nil, nil)
	old := s.attach("dev", "q1", 1) // connection 1
	cur := s.attach("dev", "q1", 2) // connection 2 takes over
	if old != cur {
		t.Fatal("expected one state")
	}
	var oldErr error
	s.release("dev", old, 1, "q1", 9, 100, completionFunc(func(_ uint64, err error) { oldErr = err }), 0)
	if oldErr == nil || cur.isReleased("q1", 9, 100) {
		t.Fatal("a taken-over connection recorded a PUBREC")
	}
	s.detach("dev", old, 1, map[uint16]byte{5: relHeld}) // connection 1's late teardown
	if s.m["dev"] != cur || !cur.attached || cur.inbound != nil {
		t.Fatalf("the late detach changed the state in use: in map %v, attached %v, inbound %v", s.m["dev"] == cur, cur.attached, cur.inbound)
	}
	s.release("dev", cur, 2, "q1", 7, 100, completionFunc(func(uint64, error) {}), 0)
	s.detach("dev", cur, 2, map[uint16]byte{3: relHeld})
	next := s.attach("dev", "q1", 3)
	if !next.isReleased("q1", 7, 100) || next.inbound[3] != relHeld {
		t.Fatal("connection 3 lost connection 2's QoS 2 state")
	}
}
