package mqtt_test

import (
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A clean session declares its queue on its first SUBSCRIBE, not at
// CONNECT (a connect storm of publish-only devices never takes the vhost's
// declaration lock), and from then on gets what its filters match; a
// persistent session has its durable queue from CONNECT.
func TestCleanSessionQueueDeclaredOnFirstSubscribe(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)

	c := testkit.DialMQTT(t, s)
	c.Connect("lazy", "", "")
	if sessionExists(t, s, "lazy") {
		t.Fatal("a clean session that has not subscribed has a queue")
	}
	c.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "lazy/+", QoS: 1}}})
	if ack, ok := c.Expect().(*wire.Suback); !ok || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != 1 {
		t.Fatalf("SUBACK %+v", ack)
	}
	if !sessionExists(t, s, "lazy") {
		t.Fatal("no session queue after SUBSCRIBE")
	}
	pub := client3(t, s, "lazy-pub")
	done(t, pub.Publish("lazy/x", 1, false, "reading"))
	p, ok := c.Expect().(*wire.Publish)
	if !ok || p.Topic != "lazy/x" || string(p.Payload) != "reading" {
		t.Fatalf("got %+v, want the reading on lazy/x", p)
	}
	c.Send(&wire.Ack{Kind: wire.PUBACK, PacketID: p.PacketID})

	c.Send(&wire.Disconnect{})
	waitClosed(t, c)
	testkit.Eventually(t, wait, "the clean session's queue deleted", func() bool { return !sessionExists(t, s, "lazy") })

	d := testkit.DialMQTT(t, s)
	d.Send(&wire.Connect{ProtocolName: "MQTT", Level: d.V, KeepAlive: 60, ClientID: "kept"})
	if ack, ok := d.Expect().(*wire.Connack); !ok || ack.ReasonCode != wire.Success || ack.SessionPresent {
		t.Fatalf("CONNACK %+v", ack)
	}
	if !sessionExists(t, s, "kept") {
		t.Fatal("a persistent session has no queue after CONNECT")
	}
}
