package mqtt

import (
	"net"
	"testing"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// holdSession makes a stand-in for a connection of clientID that holds
// its session and has not finished closing (a stalled teardown) until
// the returned func is called.
func holdSession(t *testing.T, s *testServer, clientID string) (old *conn, finish func()) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	old = newConn(s.Server, a)
	old.clientID = clientID
	old.admitted = true
	s.mu.Lock()
	s.active[clientID] = old
	s.mu.Unlock()
	return old, func() { close(old.finished) }
}

// claimedBy reports whether c holds clientID here.
func (s *testServer) claimedBy(clientID string, c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[clientID] == c
}

// A CONNECT that a newer one took over while it waited for the session's
// older connection to finish stops there: it sends nothing — no
// DISCONNECT before a CONNACK [MQTT-3.2.0-2], no CONNACK for a session it
// no longer owns — and the newest connection gets the session. (Before,
// it got DISCONNECT 0x8E and then CONNACK 0.)
func TestConnectTakenOverDuringItsHandshakeStops(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})
	x, finishX := holdSession(t, s, "hs")

	y := dialRaw(t, s.addr, wire.V5)
	y.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: "hs"})
	waitFor(t, "the second CONNECT to claim the id and wait for the first", func() bool {
		return !s.claimedBy("hs", x) && x.kicked.Load() != 0
	})
	var yc *conn
	s.mu.Lock()
	yc = s.active["hs"]
	s.mu.Unlock()

	wDone := make(chan *wire.Connack, 1)
	w := dialRaw(t, s.addr, wire.V5)
	go func() {
		w.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: "hs"})
		p, err := w.next()
		ack, _ := p.(*wire.Connack)
		if err != nil {
			ack = nil
		}
		wDone <- ack
	}()
	waitFor(t, "the third CONNECT to take the id from the second", func() bool {
		return !s.claimedBy("hs", yc) && yc.kicked.Load() != 0
	})
	finishX()
	if got := y.waitClosed(); len(got) != 0 {
		t.Fatalf("the CONNECT taken over in its handshake got %+v, want nothing", got)
	}
	if ack := <-wDone; ack == nil || ack.ReasonCode != wire.Success {
		t.Fatalf("the newest CONNECT got %+v, want CONNACK 0", ack)
	}
}

// A CONNECT on another node taking the client id over from a handshake
// here that waits for an older connection waits for that older one, which
// still holds the session: TakenOver hands its channel, not nil.
func TestTakenOverWaitsForTheConnectionAHandshakeWaitsFor(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})
	x, finishX := holdSession(t, s, "hs2")
	y := dialRaw(t, s.addr, wire.V311)
	y.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 60, ClientID: "hs2"})
	waitFor(t, "the second CONNECT to claim the id and wait for the first", func() bool {
		return !s.claimedBy("hs2", x) && x.kicked.Load() != 0
	})
	done := s.TakenOver("/", "hs2", false)
	if done == nil {
		t.Fatal("TakenOver of a handshake waiting for the session's connection waits for nothing")
	}
	select {
	case <-done:
		t.Fatal("TakenOver's channel closed while the session's connection had not finished")
	default:
	}
	finishX()
	<-done
	if got := y.waitClosed(); len(got) != 0 {
		t.Fatalf("the CONNECT taken over in its handshake got %+v, want nothing", got)
	}
}
