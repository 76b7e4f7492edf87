package mqtt_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A vhost at its max-queues refuses what would declare an MQTT session
// queue with 5.0's 0x97 Quota exceeded: a new session's first SUBSCRIBE
// (SUBACK), and a persistent session's CONNECT (CONNACK; 3.1.1 gets 0x03
// Server unavailable). Publishing needs no queue and goes on.
func TestMQTTAtTheVHostsMaxQueues(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	admin(t, s, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]int{"value": 0})

	r, ack := connect5(t, s, "no-room", nil)
	if ack.ReasonCode != 0 {
		t.Fatalf("a clean session's CONNECT: 0x%02x", ack.ReasonCode)
	}
	r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "a/b", QoS: 1}, {Filter: "$share/g/a/c", QoS: 1}}})
	sa, ok := r.Expect().(*wire.Suback)
	if !ok || len(sa.ReasonCodes) != 2 || sa.ReasonCodes[0] != wire.QuotaExceeded || sa.ReasonCodes[1] != wire.QuotaExceeded {
		t.Fatalf("SUBACK at max-queues: %+v, want 0x97 0x97", sa)
	}
	r.Send(&wire.Publish{Topic: "a/b", QoS: 1, PacketID: 2, Payload: []byte("x")})
	if pa, ok := r.Expect().(*wire.Ack); !ok || pa.Kind != wire.PUBACK {
		t.Fatalf("a publish at max-queues: %+v", pa)
	}

	_, ack = connect5(t, s, "persistent", func(c *wire.Connect) {
		c.CleanStart = false
		c.Props.SessionExpiry = 3600
		c.Props.Set(wire.PropSessionExpiry)
	})
	if ack.ReasonCode != wire.QuotaExceeded {
		t.Fatalf("a persistent session's CONNECT at max-queues: 0x%02x, want 0x97", ack.ReasonCode)
	}
	r3 := testkit.DialMQTT(t, s)
	r3.Send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 30, ClientID: "persistent3"})
	// The decoder reports 3.1.1's 0x03 as 5.0's 0x88 Server unavailable.
	if a, ok := r3.Expect().(*wire.Connack); !ok || a.ReasonCode != wire.ServerUnavailable {
		t.Fatalf("a 3.1.1 persistent session's CONNECT at max-queues: %+v, want 0x03", a)
	}
}
