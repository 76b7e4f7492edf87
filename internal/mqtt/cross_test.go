package mqtt_test

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// An AMQP publish to amq.topic reaches an MQTT subscriber, and an MQTT
// publish reaches an AMQP queue, with properties where both protocols have
// them.
func TestAMQPAndMQTTExchangeMessages(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)

	sub, in, _ := client5(t, s, "sensor-panel", nil)
	sub5(t, sub, 0, paho5Sub("sensors/+/temp", 1))
	err := ch.Publish("amq.topic", "sensors.kitchen.temp", false, false, amqp.Publishing{
		DeliveryMode: amqp.Persistent, ContentType: "text/plain", CorrelationId: "c-7", Body: []byte("21.5"),
		Headers: amqp.Table{"unit": "celsius"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := in.wait(t, 1)[0]
	if m.Topic != "sensors/kitchen/temp" || string(m.Payload) != "21.5" || m.QoS != 1 ||
		m.Properties.ContentType != "text/plain" || string(m.Properties.CorrelationData) != "c-7" || m.Properties.User.Get("unit") != "celsius" {
		t.Fatalf("AMQP → MQTT: %+v %+v", m, m.Properties)
	}

	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "sensors.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	dev := client3(t, s, "thermometer")
	done(t, dev.Publish("sensors/hall/temp", 1, false, "19.0"))
	select {
	case got := <-d:
		if got.RoutingKey != "sensors.hall.temp" || string(got.Body) != "19.0" || got.DeliveryMode != amqp.Persistent {
			t.Fatalf("MQTT → AMQP: key %q body %q mode %d", got.RoutingKey, got.Body, got.DeliveryMode)
		}
	case <-time.After(wait):
		t.Fatal("the MQTT publish never reached the AMQP queue")
	}
}

func TestMalformedPacketDisconnectsOnlyThatClient(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	bystander := client3(t, s, "bystander")
	in := newInbox()
	done(t, bystander.Subscribe("t", 1, in.handler))

	// 5.0: a PUBLISH with QoS 3 gets DISCONNECT 0x81 Malformed Packet.
	r := testkit.DialMQTT(t, s)
	r.V = wire.V5
	r.Send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V5, CleanStart: true, KeepAlive: 30, ClientID: "bad5"})
	if ack, ok := r.Expect().(*wire.Connack); !ok || ack.ReasonCode != 0 {
		t.Fatalf("%+v", ack)
	}
	if _, err := r.NC.Write([]byte{0x36, 5, 0, 1, 't', 0, 1}); err != nil {
		t.Fatal(err)
	}
	if d, ok := r.Expect().(*wire.Disconnect); !ok || d.ReasonCode != wire.MalformedPacket {
		t.Fatalf("want DISCONNECT 0x81, got %+v", d)
	}
	// 3.1.1: a wildcard in a PUBLISH topic closes the connection.
	r3 := testkit.DialMQTT(t, s)
	r3.Connect("bad3", "", "")
	r3.Send(&wire.Publish{Topic: "a/+", Payload: []byte("x")})
	if _, err := r3.R.ReadPacket(wire.V311); err == nil {
		t.Fatal("connection survived a wildcard topic")
	}
	// An unsupported protocol level gets CONNACK 0x01 (3.1.1).
	r4 := testkit.DialMQTT(t, s)
	r4.Send(&wire.Connect{ProtocolName: "MQTT", Level: 9, ClientID: "future"})
	if ack, ok := r4.Expect().(*wire.Connack); !ok || ack.ReasonCode != wire.UnsupportedProtocol {
		t.Fatalf("%+v", ack)
	}

	pub := client3(t, s, "pub")
	done(t, pub.Publish("t", 1, false, "still fine"))
	if got := in.wait(t, 1); string(got[0].Payload()) != "still fine" {
		t.Fatal("the bystander was disturbed")
	}
}

func TestMQTTOverWebSocket(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	in := newInbox()
	sub := client3(t, s, "tcp-sub")
	done(t, sub.Subscribe("dash/#", 1, in.handler))
	// Paho connects over WebSocket (subprotocol "mqtt") from a ws:// URL.
	o := paho.NewClientOptions().AddBroker(s.WSURL).SetClientID("browser").SetAutoReconnect(false).SetProtocolVersion(4)
	ws := paho.NewClient(o)
	done(t, ws.Connect())
	defer ws.Disconnect(50)
	done(t, ws.Publish("dash/clicks", 1, false, "42"))
	if got := in.wait(t, 1); string(got[0].Payload()) != "42" {
		t.Fatalf("%q", got[0].Payload())
	}
}

func TestCleanSessionForgetsSubscriptions(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	in := newInbox()
	c := client3(t, s, "forgetful") // clean session
	done(t, c.Subscribe("news/#", 1, in.handler))
	c.Disconnect(50)
	pub := client3(t, s, "pub")
	done(t, pub.Publish("news/today", 1, false, "missed"))
	in2 := newInbox()
	again := client3(t, s, "forgetful", func(o *paho.ClientOptions) { o.SetDefaultPublishHandler(in2.handler) })
	// A marker through a subscription made now: a message of the old
	// session would have been sent before it (at CONNECT).
	done(t, again.Subscribe("marker", 1, in2.handler))
	done(t, pub.Publish("marker", 1, false, "m"))
	if got := in2.wait(t, 1); got[0].Topic() != "marker" {
		t.Fatalf("unexpected message on %s: the clean session kept the old subscription", got[0].Topic())
	}
}

// A subscriber that stops reading never makes the broker lose QoS 1
// messages; QoS 0 ones are dropped only once it is hopelessly behind, and
// counted.
func TestSlowSubscriberKeepsQoS1AndSheddsCountedQoS0(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MQTTQoS0Backlog = 100 })
	for _, qos := range []byte{1, 0} {
		stuck := testkit.DialMQTT(t, s)
		id := fmt.Sprint("stuck-", qos)
		stuck.Connect(id, "", "")
		stuck.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "flood/" + id, QoS: qos}}})
		stuck.Expect() // SUBACK; from here on the client reads nothing
		pub := client3(t, s, "flooder-"+id)
		payload := make([]byte, 4096)
		for i := 0; i < 3000; i++ { // 12 MB, beyond the socket and outbox buffers
			pub.Publish("flood/"+id, qos, false, payload)
		}
		done(t, pub.Publish("flood/"+id, qos, false, payload))
		_, ch := s.Channel(t)
		q, err := ch.QueueDeclarePassive("mqtt-subscription-"+id, false, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if qos == 1 {
			if q.Messages < 1000 || s.MQTTStats().QoS0Dropped != 0 {
				t.Fatalf("QoS 1: %d waiting in the session queue, %d dropped", q.Messages, s.MQTTStats().QoS0Dropped)
			}
			continue
		}
		testkit.Eventually(t, wait, "QoS 0 shedding counted", func() bool { return s.MQTTStats().QoS0Dropped > 0 })
	}
}
