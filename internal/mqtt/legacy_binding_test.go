package mqtt_test

import (
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A subscription bound by an earlier version carries its filter in
// x-mqtt-filter; newer bindings read it from the key. The old form is
// still resumed, and UNSUBSCRIBE removes it.
func TestLegacySubscriptionBindingResumedAndRemoved(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	addr := strings.TrimPrefix(s.MQTTURL, "tcp://")
	c := dialFrom(t, addr, "127.0.0.1")
	connect(t, c, "legacy", false)
	c.Close()
	testkit.Eventually(t, wait, "the session offline", func() bool { return s.MQTTStats().ConnectionsOpen == 0 })
	_, ch := s.Channel(t)
	args := amqp.Table{"x-mqtt-filter": "old/+/x.y", "x-mqtt-qos": int32(1), "x-mqtt-no-local": false,
		"x-mqtt-retain-as-published": false, "x-mqtt-subscription-id": int64(0)}
	if err := ch.QueueBind("mqtt-subscription-legacy", "old.*.x/y", "amq.topic", false, args); err != nil {
		t.Fatal(err)
	}

	c = dialFrom(t, addr, "127.0.0.1")
	defer c.Close()
	if !connect(t, c, "legacy", false) {
		t.Fatal("session not present")
	}
	pub := dialFrom(t, addr, "127.0.0.1")
	defer pub.Close()
	connect(t, pub, "legacy-pub", true)
	send(t, pub, &wire.Publish{QoS: 1, PacketID: 1, Topic: "old/a/x.y", Payload: []byte("one")})
	if _, ok := expect(t, pub).(*wire.Ack); !ok {
		t.Fatal("no PUBACK")
	}
	p, ok := expect(t, c).(*wire.Publish)
	if !ok || p.Topic != "old/a/x.y" || p.QoS != 1 {
		t.Fatalf("got %+v, want the message on old/a/x.y at QoS 1", p)
	}
	send(t, c, &wire.Ack{Kind: wire.PUBACK, PacketID: p.PacketID})
	send(t, c, &wire.Unsubscribe{PacketID: 2, Filters: []string{"old/+/x.y"}})
	if ack, ok := expect(t, c).(*wire.Unsuback); !ok || ack.PacketID != 2 {
		t.Fatalf("got %+v, want UNSUBACK", ack)
	}
	send(t, c, &wire.Disconnect{})
	testkit.Eventually(t, wait, "the session offline", func() bool { return s.MQTTStats().ConnectionsOpen <= 1 })
	// Offline, a message it still matched would wait in its queue.
	send(t, pub, &wire.Publish{QoS: 1, PacketID: 2, Topic: "old/a/x.y", Payload: []byte("two")})
	if _, ok := expect(t, pub).(*wire.Ack); !ok {
		t.Fatal("no PUBACK")
	}
	q, err := ch.QueueDeclarePassive("mqtt-subscription-legacy", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("%d messages routed to the session after UNSUBSCRIBE", q.Messages)
	}
}
