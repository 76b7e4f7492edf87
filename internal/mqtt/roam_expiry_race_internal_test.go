package mqtt

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/vfs"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Another node's takeover (TakenOver) landing after this node's handshake
// was admitted and before it recorded the session as connected here does
// not leave a "connected" entry: the next restart of this node would arm
// a countdown from the restart and delete the session, which lives on
// with its client on the other node (review11 F4). TakenOver's steps are
// done by hand in that window, with the expiry's lock held so that the
// handshake's record comes after them.
func TestTakenOverBeforeTheHandshakesExpiryRecordLeavesNoEntry(t *testing.T) {
	clk := clock.NewFake(time.Now())
	b := newTestBroker(clk)
	dir := t.TempDir()
	peers := &signalPeers{reached: make(chan string, 1)}
	s := serveTest(t, b, dir, Config{Cluster: peers})
	r, _ := connectRaw5(t, s.addr, "r", false, 60)
	r.send(&wire.Disconnect{})
	r.waitClosed()

	s.expiry.mu.Lock() // the resuming handshake will wait in expiry.connected
	locked := true
	defer func() {
		if locked {
			s.expiry.mu.Unlock()
		}
	}()
	peers.armed.Store(true)
	r2 := dialRaw(t, s.addr, wire.V5)
	c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: "r"}
	c.Props.SessionExpiry = 60
	c.Props.Set(wire.PropSessionExpiry)
	r2.send(c)
	<-peers.reached
	var nc *conn
	waitFor(t, "admission", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		nc = s.active["r"]
		return nc != nil && nc.admitted
	})
	// TakenOver("/", "r", false), step by step: the id taken, moved's
	// drop (whose lock is held here), the kick.
	s.mu.Lock()
	delete(s.active, "r")
	nc.remote = remoteResumed
	s.mu.Unlock()
	s.expiry.disarmLocked("r")
	delete(s.expiry.entries, "r")
	if err := s.expiry.saveLocked(); err != nil {
		t.Fatal(err)
	}
	nc.kick(wire.SessionTakenOver)
	locked = false
	s.expiry.mu.Unlock()
	r2.waitClosed()
	waitFor(t, "the handshake's end", func() bool { return nc.state.Load() == stDone })

	s.expiry.mu.Lock()
	en, ok := s.expiry.entries["r"]
	s.expiry.mu.Unlock()
	if ok {
		t.Errorf("an expiry entry %+v is left for a session taken over by another node", en)
	}
	onDisk, err := newSessionExpiry(vfs.Default, filepath.Join(dir, "mqtt-sessions.bin"), clk)
	if err != nil {
		t.Fatal(err)
	}
	if en, ok := onDisk.entries["r"]; ok {
		t.Errorf("the expiry file keeps an entry %+v for the session taken over by another node", en)
	}
	s2 := serveTest(t, b, dir, Config{Cluster: peers}) // this node restarts; the client is on the other node
	clk.Advance(61 * time.Second)
	if !s2.hasSession("r") {
		t.Error("the session, taken over by another node, was deleted by a countdown armed at this node's restart")
	}
}
