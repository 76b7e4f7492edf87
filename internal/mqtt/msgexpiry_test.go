package mqtt_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// The expiry forwarded is what is left, rounded up: 1 s published arrives
// as 1 s, not 0 [MQTT-3.3.2-6]. A retained message expires too: once its
// interval has passed a new subscriber does not get it [MQTT-3.3.2-5].
func TestMQTT5MessageExpiryRoundsUpAndRetainedExpires(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	sub, _ := connect5(t, s, "exp-sub", nil)
	sub.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "exp/#", QoS: 1}}})
	sub.Expect()
	pub, _, _ := client5(t, s, "exp-pub", nil)
	one := uint32(1)
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
	// What a new subscriber gets: retained messages in topic order, the
	// marker last.
	n := 0
	retained := func() []string {
		n++
		late, _ := connect5(t, s, fmt.Sprint("exp-late-", n), nil)
		defer late.Send(&wire.Disconnect{})
		late.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "exp/#", QoS: 0}}})
		late.Expect() // SUBACK
		var topics []string
		for range 10 {
			p, ok := late.Expect().(*wire.Publish)
			if !ok {
				t.Fatalf("want PUBLISH, got %+v", p)
			}
			topics = append(topics, p.Topic)
			if p.Topic == "exp/zz-marker" {
				break
			}
		}
		return topics
	}
	if got := retained(); !slices.Equal(got, []string{"exp/short", "exp/zz-marker"}) {
		t.Fatalf("within its interval, retained %v", got)
	}
	clk.Advance(time.Second - time.Millisecond)
	if got := retained(); !slices.Equal(got, []string{"exp/short", "exp/zz-marker"}) {
		t.Fatalf("the retained message went before its interval passed: retained %v", got)
	}
	clk.Advance(time.Millisecond)
	if got := retained(); !slices.Equal(got, []string{"exp/zz-marker"}) {
		t.Fatalf("the retained message did not expire after its interval: retained %v", got)
	}
}
