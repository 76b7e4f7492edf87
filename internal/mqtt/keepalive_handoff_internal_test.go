package mqtt

import (
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// review10 F4: a packet the event loop leaves to a runner (a SUBSCRIBE)
// that arrives after 1.5 × the keep-alive but before the timing wheel's
// tick ends the connection is the client's packet in time: it must be
// handled, not dropped as a keep-alive timeout. The test takes the parked
// connection out of the wheel (its tick has not come yet) and moves its
// last packet an hour back, then sends the SUBSCRIBE.
func TestMQTTHandedOffPacketPastKeepAliveIsServed(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})
	if !pollerSupported {
		t.Skip("no event loop on this platform")
	}
	r := dialRaw(t, s.addr, wire.V311)
	r.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: "late"})
	if ack, ok := r.expect().(*wire.Connack); !ok || ack.ReasonCode != wire.Success {
		t.Fatalf("want CONNACK 0, got %+v", ack)
	}
	var c *conn
	waitFor(t, "the connection to park", func() bool {
		s.mu.Lock()
		c = s.active["late"]
		s.mu.Unlock()
		return c != nil && c.state.Load() == stParked
	})
	c.loop.wheel.remove(c)
	c.lastPacket = time.Now().Add(-time.Hour)
	// Published to the poller's goroutine by the atomic it reads on
	// waking the connection (nothing else touches a parked connection).
	c.state.Store(c.state.Load())

	r.send(&wire.Subscribe{PacketID: 7, Subs: []wire.Subscription{{Filter: "late/#", QoS: 1}}})
	p, err := r.next()
	if err != nil {
		t.Fatalf("the connection ended instead of answering the SUBSCRIBE: %v", err)
	}
	if sa, ok := p.(*wire.Suback); !ok || sa.PacketID != 7 {
		t.Fatalf("want SUBACK 7, got %+v", p)
	}
	r.send(&wire.Pingreq{})
	if _, ok := r.expect().(*wire.Pingresp); !ok {
		t.Fatal("want PINGRESP")
	}
}
