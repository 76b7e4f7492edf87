package mqtt_test

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

func withExpiry(secs uint32) func(*wire.Connect) {
	return func(c *wire.Connect) {
		c.Props.SessionExpiry = secs
		c.Props.Set(wire.PropSessionExpiry)
	}
}

func disconnectWithExpiry(secs uint32) *wire.Disconnect {
	d := &wire.Disconnect{}
	d.Props.SessionExpiry = secs
	d.Props.Set(wire.PropSessionExpiry)
	return d
}

func sessionExists(t *testing.T, s *testkit.Server, clientID string) bool {
	t.Helper()
	_, ch := s.Channel(t)
	_, err := ch.QueueDeclarePassive("mqtt-subscription-"+clientID, true, false, false, false, nil)
	return err == nil
}

// The Session Expiry Interval on DISCONNECT replaces the CONNECT's
// (§3.14.2.2.2): longer keeps the session, 0 ends it; a resumed session
// uses the interval of its latest CONNECT, not its first.
func TestMQTT5SessionExpiryOnDisconnect(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)

	// The server closes the socket after the session is torn down, so
	// once each connection is closed its countdown runs on the fake clock.
	extended, _ := connect5(t, s, "extended", withExpiry(1))
	extended.Send(disconnectWithExpiry(3600))
	waitClosed(t, extended)
	control, _ := connect5(t, s, "control", withExpiry(1))
	ended, _ := connect5(t, s, "ended", withExpiry(3600))
	control.Send(&wire.Disconnect{})
	waitClosed(t, control)
	ended.Send(disconnectWithExpiry(0))
	waitClosed(t, ended)
	if sessionExists(t, s, "ended") {
		t.Fatal("DISCONNECT with expiry 0 did not end the session")
	}
	clk.Advance(time.Second - time.Millisecond)
	if !sessionExists(t, s, "control") {
		t.Fatal("the 1 s session expired before its interval")
	}
	clk.Advance(time.Millisecond)
	if sessionExists(t, s, "control") {
		t.Fatal("the 1 s session did not expire after 1 s")
	}
	if !sessionExists(t, s, "extended") {
		t.Fatal("a session extended by DISCONNECT expired with its CONNECT's interval")
	}

	// Resumed with a shorter interval: that one applies.
	first, _ := connect5(t, s, "resumed", withExpiry(3600))
	first.Send(&wire.Disconnect{})
	waitClosed(t, first)
	again, ack := connect5(t, s, "resumed", func(c *wire.Connect) { c.CleanStart = false; withExpiry(1)(c) })
	if !ack.SessionPresent {
		t.Fatal("session not resumed")
	}
	again.Send(&wire.Disconnect{})
	waitClosed(t, again)
	clk.Advance(time.Second)
	if sessionExists(t, s, "resumed") {
		t.Fatal("the resumed session did not expire with its new interval")
	}
}

// A non-zero Session Expiry Interval on DISCONNECT after 0 on CONNECT is a
// protocol error [MQTT-3.14.2-2], answered with DISCONNECT 0x82.
func TestMQTT5SessionExpiryOnDisconnectAfterZeroIsProtocolError(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r, _ := connect5(t, s, "zero", nil)
	r.Send(disconnectWithExpiry(60))
	if d, ok := r.Expect().(*wire.Disconnect); !ok || d.ReasonCode != wire.ProtocolError {
		t.Fatalf("want DISCONNECT 0x82, got %+v", d)
	}
	testkit.Eventually(t, 5*time.Second, "the session ended", func() bool { return !sessionExists(t, s, "zero") })
}

// Session expiry survives a restart: it is not the queue's x-expires.
func TestMQTT5SessionExpiryAfterRestart(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t, testkit.WithDataDir(t.TempDir()))
	keep, _ := connect5(t, s, "keep", withExpiry(1))
	keep.Send(disconnectWithExpiry(3600))
	waitClosed(t, keep)
	brief, _ := connect5(t, s, "brief-restart", withExpiry(3600))
	brief.Send(disconnectWithExpiry(1))
	waitClosed(t, brief)
	if !sessionExists(t, s, "keep") || !sessionExists(t, s, "brief-restart") {
		t.Fatal("both sessions should be recorded")
	}
	s = s.Restart(t) // the same fake clock: its countdowns survive
	clk.Advance(time.Second)
	if sessionExists(t, s, "brief-restart") {
		t.Fatal("the 1 s session did not expire after the restart")
	}
	// A control started after the restart: when it has expired, 1 s has
	// passed since the restart for "keep" as well.
	control, _ := connect5(t, s, "control-restart", withExpiry(1))
	control.Send(&wire.Disconnect{})
	waitClosed(t, control)
	clk.Advance(time.Second)
	if sessionExists(t, s, "control-restart") {
		t.Fatal("the control did not expire")
	}
	if !sessionExists(t, s, "keep") {
		t.Fatal("the session extended on DISCONNECT expired after the restart")
	}
}

// waitClosed waits for the server to close r's connection, which it does
// after tearing the session down.
func waitClosed(t *testing.T, r *testkit.RawMQTT) {
	t.Helper()
	for range 100 {
		if _, err := r.R.ReadPacket(wire.V5); err != nil {
			return
		}
	}
	t.Fatal("the server kept the connection open")
}
