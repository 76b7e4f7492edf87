package mqtt_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// connect5 connects a raw MQTT 5 client with CONNECT properties set by
// adjust and returns it with the CONNACK.
func connect5(t *testing.T, s *testkit.Server, id string, adjust func(*wire.Connect)) (*testkit.RawMQTT, *wire.Connack) {
	t.Helper()
	r := testkit.DialMQTT(t, s)
	r.V = wire.V5
	c := &wire.Connect{ProtocolName: "MQTT", Level: 5, CleanStart: true, KeepAlive: 30, ClientID: id}
	if adjust != nil {
		adjust(c)
	}
	r.Send(c)
	ack, ok := r.Expect().(*wire.Connack)
	if !ok {
		t.Fatalf("want CONNACK, got %+v", ack)
	}
	return r, ack
}

// Reason strings go with error codes only, and not at all to a client that
// set Request Problem Information to 0 [MQTT-3.1.2-29].
func TestMQTT5ReasonStringsFollowRequestProblemInformation(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, want := range []bool{true, false} {
		r, _ := connect5(t, s, "problems", func(c *wire.Connect) {
			if !want {
				c.Props.RequestProblemInfo = 0
				c.Props.Set(wire.PropRequestProblemInfo)
			}
		})
		r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "a/#/b", QoS: 1}}})
		sa, ok := r.Expect().(*wire.Suback)
		if !ok || len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] != wire.TopicFilterInvalid {
			t.Fatalf("SUBACK %+v", sa)
		}
		if got := sa.Props.Has(wire.PropReasonString); got != want {
			t.Fatalf("problem information %v: SUBACK reason string present %v", want, got)
		}
		r.Send(&wire.Ack{Kind: wire.PUBREL, PacketID: 77})
		pc, ok := r.Expect().(*wire.Ack)
		if !ok || pc.Kind != wire.PUBCOMP || pc.ReasonCode != wire.PacketIDNotFound {
			t.Fatalf("PUBCOMP %+v", pc)
		}
		if got := pc.Props.Has(wire.PropReasonString); got != want {
			t.Fatalf("problem information %v: PUBCOMP reason string present %v", want, got)
		}
		// Success-class codes never carry one: 0x10 and 0x11.
		r.Send(&wire.Publish{QoS: 1, PacketID: 2, Topic: "nobody/here", Payload: []byte("x")})
		pa, ok := r.Expect().(*wire.Ack)
		if !ok || pa.ReasonCode != wire.NoMatchingSubscribers || pa.Props.Has(wire.PropReasonString) {
			t.Fatalf("PUBACK %+v", pa)
		}
		r.Send(&wire.Unsubscribe{PacketID: 3, Filters: []string{"never/subscribed"}})
		ua, ok := r.Expect().(*wire.Unsuback)
		if !ok || ua.ReasonCodes[0] != wire.NoSubscriptionExisted || ua.Props.Has(wire.PropReasonString) {
			t.Fatalf("UNSUBACK %+v", ua)
		}
		r.Send(&wire.Disconnect{})
	}
}
