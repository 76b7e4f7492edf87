package mqtt_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A QoS 2 message whose PUBREC came gets its PUBREL when the session
// resumes [MQTT-4.4.0-1] even though its message expiry ran out while the
// client was away, and once PUBCOMP'd nothing comes again (its PUBREC
// record is gone).
func TestMQTTReleasedMessageExpiredWhileAwayStillGetsPUBREL(t *testing.T) {
	s, clk := startFake(t)
	r, _ := resume(t, s, wire.V5, "rel-exp")
	subscribe5(t, r, "relexp/#", 2, false)
	pub, _, _ := client5(t, s, "rel-exp-pub", nil)
	one := uint32(1)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "relexp/x", QoS: 2, Payload: []byte("x"),
		Properties: &paho.PublishProperties{MessageExpiry: &one}}); err != nil {
		t.Fatal(err)
	}
	p := expectPub(t, r)
	r.Send(&wire.Ack{Kind: wire.PUBREC, PacketID: p.PacketID})
	expectAck(t, r, wire.PUBREL, p.PacketID)
	_ = r.NC.Close()
	q, err := s.Broker.VHost("/").Queue("mqtt-subscription-rel-exp", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The message expires in the session queue (if it is still there).
	testkit.Eventually(t, 5*time.Second, "the queue holds nothing", func() bool {
		clk.Advance(time.Second)
		ready, unacked, _ := q.Counts()
		return ready == 0 && unacked == 0
	})
	r2, _ := connect5(t, s, "rel-exp", func(c *wire.Connect) { c.CleanStart = false; withExpiry(3600)(c) })
	r2.Send(&wire.Pingreq{})
	got := r2.Expect()
	if a, ok := got.(*wire.Ack); !ok || a.Kind != wire.PUBREL || a.PacketID != p.PacketID {
		t.Fatalf("resumed session: want PUBREL %d first, got %T %+v", p.PacketID, got, got)
	}
	if _, ok := r2.Expect().(*wire.Pingresp); !ok {
		t.Fatal("want PINGRESP after the PUBREL")
	}
	r2.Send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: p.PacketID})
	expectQuiet(t, r2)
	_ = r2.NC.Close()
	r3, _ := connect5(t, s, "rel-exp", func(c *wire.Connect) { c.CleanStart = false; withExpiry(3600)(c) })
	expectQuiet(t, r3)
}
