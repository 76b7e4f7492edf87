package mqtt_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// The expiry forwarded is what is left, rounded up: 1 s published arrives
// as 1 s, not 0 [MQTT-3.3.2-6]. A retained message expires too: once its
// interval has passed a new subscriber does not get it [MQTT-3.3.2-5].
func TestMQTT5MessageExpiryRoundsUpAndRetainedExpires(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub, _ := connect5(t, s, "exp-sub", nil)
	sub.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "exp/#", QoS: 1}}})
	sub.Expect()
	pub, _, _ := client5(t, s, "exp-pub", nil)
	one := uint32(1)
	published := time.Now()
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "exp/short", QoS: 1, Retain: true, Payload: []byte("short"),
		Properties: &paho.PublishProperties{MessageExpiry: &one}}); err != nil {
		t.Fatal(err)
	}
	p, ok := sub.Expect().(*wire.Publish)
	if !ok || !p.Props.Has(wire.PropMessageExpiry) || p.Props.MessageExpiry != 1 {
		t.Fatalf("delivered %+v: want message expiry 1", p)
	}
	sub.Send(&wire.Ack{Kind: wire.PUBACK, PacketID: p.PacketID})
	// A retained marker without expiry: the event that ends the wait below.
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "exp/zz-marker", QoS: 1, Retain: true, Payload: []byte("marker")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(published.Add(1100 * time.Millisecond))) // the interval must pass
	late, _ := connect5(t, s, "exp-late", nil)
	late.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "exp/#", QoS: 1}}})
	late.Expect() // SUBACK
	if p, ok := late.Expect().(*wire.Publish); !ok || p.Topic != "exp/zz-marker" {
		t.Fatalf("after its expiry: %+v (the expired retained message must be gone)", p)
	}
}
