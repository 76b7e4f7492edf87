package mqtt

import (
	"testing"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A connected client whose session queue is deleted under it (AMQP
// queue.delete, the HTTP API) is disconnected — 5.0 with DISCONNECT 0x98
// Administrative action, 3.1.1 by a close — so it reconnects to a session
// that exists, rather than staying connected and receiving nothing, ever.
func TestSessionQueueDeletedDisconnectsTheClient(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})

	r5, _ := connectRaw5(t, s.addr, "del5", true, 60)
	r5.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "del/#", QoS: 1}}})
	if _, ok := r5.expect().(*wire.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	if _, err := s.b.VHost("/").DeleteQueue(sessionQueue("del5"), false, false, 0); err != nil {
		t.Fatal(err)
	}
	got := r5.waitClosed()
	if len(got) != 1 {
		t.Fatalf("want one DISCONNECT, got %+v", got)
	}
	if d, ok := got[0].(*wire.Disconnect); !ok || d.ReasonCode != administrativeAction {
		t.Fatalf("want DISCONNECT 0x98, got %+v", got[0])
	}

	r3 := dialRaw(t, s.addr, wire.V311)
	r3.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 60, ClientID: "del3"})
	if ack, ok := r3.expect().(*wire.Connack); !ok || ack.ReasonCode != 0 {
		t.Fatalf("want CONNACK 0, got %+v", ack)
	}
	if _, err := s.b.VHost("/").DeleteQueue(sessionQueue("del3"), false, false, 0); err != nil {
		t.Fatal(err)
	}
	if got := r3.waitClosed(); len(got) != 0 {
		t.Fatalf("3.1.1: want a plain close, got %+v", got)
	}
}
