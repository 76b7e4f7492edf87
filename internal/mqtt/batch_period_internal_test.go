package mqtt

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// review10 F5: a message the event loop published, queued, and delivered
// later by another goroutine (here a basic.get and requeue of the session
// queue) goes out at once, even while the loop's burst is open (the test
// holds it open, as a poller busy with a long batch of events would): it
// is not deferred to the burst's flush.
func TestMQTTLaterDeliveryDoesNotWaitForTheLoopsBurst(t *testing.T) {
	if !pollerSupported {
		t.Skip("no event loop on this platform")
	}
	s := serveTest(t, newTestBroker(nil), "", Config{})
	connect := func(id string, clean bool) *rawClient {
		r := dialRaw(t, s.addr, wire.V311)
		r.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: clean, KeepAlive: 60, ClientID: id})
		if ack, ok := r.expect().(*wire.Connack); !ok || ack.ReasonCode != wire.Success {
			t.Fatalf("want CONNACK 0, got %+v", ack)
		}
		return r
	}
	parked := func(id string) {
		waitFor(t, id+" parked", func() bool {
			s.mu.Lock()
			c := s.active[id]
			s.mu.Unlock()
			return c != nil && c.state.Load() == stParked
		})
	}

	sub := connect("f5sub", false)
	sub.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "f5/#", QoS: 1}}})
	if _, ok := sub.expect().(*wire.Suback); !ok {
		t.Fatal("want SUBACK")
	}
	sub.send(&wire.Disconnect{})
	sub.waitClosed()
	waitFor(t, "the session offline", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.active["f5sub"] == nil
	})

	// Parked first, so the event loop serves the PUBLISH (inline.go).
	pub := connect("f5pub", true)
	parked("f5pub")
	pub.send(&wire.Publish{QoS: 1, PacketID: 1, Topic: "f5/x", Payload: []byte("later")})
	if ack, ok := pub.expect().(*wire.Ack); !ok || ack.Kind != wire.PUBACK {
		t.Fatalf("want PUBACK, got %+v", ack)
	}

	q, err := s.b.VHost("/").Queue(sessionQueue("f5sub"), 0)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := q.Get(false)
	if !ok || string(d.Msg.Body) != "later" {
		t.Fatalf("basic.get of the session queue: ok %v, %+v", ok, d.Msg)
	}
	sub = connect("f5sub", false)
	parked("f5sub")

	s.mu.Lock()
	loop := s.loop
	s.mu.Unlock()
	loop.burst.begin()
	defer loop.burst.flush(false)
	q.Requeue([]broker.Delivery{d}) // dispatches to the subscriber on this goroutine
	_ = sub.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	p, err := sub.next()
	if err != nil {
		t.Fatalf("the requeued message did not go out while the loop's burst was open: %v", err)
	}
	if pp, ok := p.(*wire.Publish); !ok || string(pp.Payload) != "later" {
		t.Fatalf("want the PUBLISH, got %+v", p)
	}
}
