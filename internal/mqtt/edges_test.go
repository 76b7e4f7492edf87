package mqtt_test

import (
	"slices"
	"testing"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Tern supports no enhanced authentication method, so a CONNECT naming one
// is refused with 0x8C [MQTT-4.12.0-1].
func TestMQTT5AuthenticationMethodRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ack := connect5(t, s, "scram", func(c *wire.Connect) {
		c.Props.AuthMethod = "SCRAM-SHA-1"
		c.Props.Set(wire.PropAuthMethod)
	})
	if ack.ReasonCode != wire.BadAuthMethod {
		t.Fatalf("CONNACK 0x%02x, want 0x8C bad authentication method", ack.ReasonCode)
	}
}

// A shared subscription needs a group and a filter [MQTT-4.8.2-2].
func TestMQTT5SharedSubscriptionWithoutFilterRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r, _ := connect5(t, s, "sharer", nil)
	r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{
		{Filter: "$share/g", QoS: 1}, {Filter: "$share/g/", QoS: 1}, {Filter: "$share//t", QoS: 1}, {Filter: "$share/g/t", QoS: 1}}})
	sa, ok := r.Expect().(*wire.Suback)
	if !ok || !slices.Equal(sa.ReasonCodes, []byte{0x8F, 0x8F, 0x8F, 0x01}) {
		t.Fatalf("SUBACK %+v", sa)
	}
}

// With anonymous logins off, an MQTT 5 client without a user name is not
// authorised (0x87); it gave no credentials that could be bad (0x86).
func TestMQTT5RefusedAnonymousIsNotAuthorized(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MQTTAllowAnonymous = false })
	_, ack := connect5(t, s, "anon", nil)
	if ack.ReasonCode != wire.NotAuthorized {
		t.Fatalf("CONNACK 0x%02x, want 0x87", ack.ReasonCode)
	}
}
