package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// userProps are MQTT 5 user properties with a repeated name, out of
// alphabetical order, and names that look like the broker's own.
var userProps = []wire.UserProperty{
	{Key: "zone", Value: "eu"}, {Key: "trace", Value: "t1"}, {Key: "alpha", Value: "1"},
	{Key: "trace", Value: "t2"}, {Key: "x-mqtt-publish-qos", Value: "0"}, {Key: "x-mqtt-client-id", Value: "victim"},
	{Key: "x-mqtt-retain", Value: "yes"}, {Key: "middle", Value: "m"},
}

func pahoUserProps(ups []wire.UserProperty) paho.UserProperties {
	var out paho.UserProperties
	for _, u := range ups {
		out = append(out, paho.UserProperty{Key: u.Key, Value: u.Value})
	}
	return out
}

// subscribe5 subscribes a raw client and returns after its SUBACK.
func subscribe5(t *testing.T, r *testkit.RawMQTT, filter string, qos byte, noLocal bool) {
	t.Helper()
	r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: filter, QoS: qos, NoLocal: noLocal}}})
	if sa, ok := r.Expect().(*wire.Suback); !ok || sa.ReasonCodes[0] >= 0x80 {
		t.Fatalf("SUBACK %+v", sa)
	}
}

// expectPublish reads the next PUBLISH, acknowledging it at its QoS.
func expectPublish(t *testing.T, r *testkit.RawMQTT) *wire.Publish {
	t.Helper()
	p, ok := r.Expect().(*wire.Publish)
	if !ok {
		t.Fatalf("want PUBLISH, got %+v", p)
	}
	switch p.QoS {
	case 1:
		r.Send(&wire.Ack{Kind: wire.PUBACK, PacketID: p.PacketID})
	case 2:
		r.Send(&wire.Ack{Kind: wire.PUBREC, PacketID: p.PacketID})
		r.Expect() // PUBREL
		r.Send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: p.PacketID})
	}
	return p
}

// User properties reach MQTT subscribers unaltered and in order, repeated
// names included [MQTT-3.3.2-17, -18], also after a restart from a
// persistent session.
func TestMQTT5UserPropertiesKeepOrderAndRepeats(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	live, _ := connect5(t, s, "live", nil)
	subscribe5(t, live, "props/#", 1, false)
	offline, _ := connect5(t, s, "offline", withExpiry(3600))
	subscribe5(t, offline, "props/#", 1, false)
	offline.Send(&wire.Disconnect{})

	pub, _, _ := client5(t, s, "props-pub", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "props/a", QoS: 1, Payload: []byte("p"),
		Properties: &paho.PublishProperties{User: pahoUserProps(userProps)}}); err != nil {
		t.Fatal(err)
	}
	if got := expectPublish(t, live).Props.User; !slices.Equal(got, userProps) {
		t.Fatalf("user properties\n got %v\nwant %v", got, userProps)
	}
	s = s.Restart(t)
	back, ack := connect5(t, s, "offline", func(c *wire.Connect) { c.CleanStart = false; withExpiry(3600)(c) })
	if !ack.SessionPresent {
		t.Fatal("session lost in the restart")
	}
	if got := expectPublish(t, back).Props.User; !slices.Equal(got, userProps) {
		t.Fatalf("after a restart, user properties\n got %v\nwant %v", got, userProps)
	}
}

// Headers that look like the broker's are the client's: x-mqtt-client-id
// does not trip another client's no-local, x-mqtt-publish-qos does not
// change the QoS, and both are forwarded.
func TestMQTT5UserPropertiesCannotForgeBrokerMetadata(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	victim, _ := connect5(t, s, "victim", nil)
	subscribe5(t, victim, "forge/#", 2, true)
	pub, _, _ := client5(t, s, "forger", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "forge/x", QoS: 2, Payload: []byte("f"),
		Properties: &paho.PublishProperties{User: pahoUserProps(userProps)}}); err != nil {
		t.Fatal(err)
	}
	p := expectPublish(t, victim)
	if p.QoS != 2 || p.Retain {
		t.Fatalf("delivered at QoS %d retain %v: want QoS 2, not retained", p.QoS, p.Retain)
	}
	if !slices.Equal(p.Props.User, userProps) {
		t.Fatalf("user properties\n got %v\nwant %v", p.Props.User, userProps)
	}
}

// An AMQP consumer gets the user properties as headers, each name once
// with its first value (an AMQP table must not repeat a name; RabbitMQ
// keeps the first), and no broker-internal headers.
func TestMQTT5UserPropertiesToAMQPHeaders(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "to-amqp.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume(q.Name, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := client5(t, s, "to-amqp-pub", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "to-amqp/x", QoS: 1, Payload: []byte("h"),
		Properties: &paho.PublishProperties{User: pahoUserProps(userProps)}}); err != nil {
		t.Fatal(err)
	}
	d := testkit.Receive(t, ds, wait)
	want := amqp.Table{"zone": "eu", "trace": "t1", "alpha": "1", "x-mqtt-publish-qos": "0", "x-mqtt-client-id": "victim", "x-mqtt-retain": "yes", "middle": "m"}
	if len(d.Headers) != len(want) {
		t.Fatalf("headers %v, want %v", d.Headers, want)
	}
	for k, v := range want {
		if d.Headers[k] != v {
			t.Fatalf("headers %v, want %v", d.Headers, want)
		}
	}
}

// pika runs a Python pika script (pika keeps a field table's wire order in
// its dict) with the server's AMQP URL; it skips without pika outside CI.
func pika(t *testing.T, s *testkit.Server, script string) string {
	t.Helper()
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3-pika is required in CI: %v", err)
		}
		t.Skip("python3-pika not installed (apt-get install python3-pika)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", script)
	cmd.Env = append(os.Environ(), "AMQP_URL="+s.URL)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("pika: %v\n%s", err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// The AMQP field table goes out in the order the MQTT publisher gave its
// user properties, as an AMQP client that keeps table order (pika) sees.
func TestMQTT5UserPropertiesOrderOnTheAMQPWire(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("wire-order", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("wire-order", "wire.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := client5(t, s, "wire-pub", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "wire/x", QoS: 1, Payload: []byte("w"),
		Properties: &paho.PublishProperties{User: pahoUserProps(userProps)}}); err != nil {
		t.Fatal(err)
	}
	out := pika(t, s, `
import json, os, pika
c = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
ch = c.channel()
m, props, body = ch.basic_get("wire-order", auto_ack=True)
print(json.dumps(list(props.headers.keys())))
c.close()
`)
	var keys []string
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	want := []string{"zone", "trace", "alpha", "x-mqtt-publish-qos", "x-mqtt-client-id", "x-mqtt-retain", "middle"}
	if !slices.Equal(keys, want) {
		t.Fatalf("AMQP header order %v, want %v", keys, want)
	}
}

// An AMQP publisher's headers reach an MQTT subscriber in the wire order
// the publisher sent, live and from a persistent session after a restart.
func TestAMQPHeadersReachMQTTInWireOrder(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	live, _ := connect5(t, s, "amqp-live", nil)
	subscribe5(t, live, "ordered/#", 1, false)
	offline, _ := connect5(t, s, "amqp-offline", withExpiry(3600))
	subscribe5(t, offline, "ordered/#", 1, false)
	offline.Send(&wire.Disconnect{})
	pika(t, s, `
import os, pika
c = pika.BlockingConnection(pika.URLParameters(os.environ["AMQP_URL"]))
ch = c.channel()
h = {"zeta": "1", "beta": "2", "x-mqtt-publish-qos": "0", "omega": "3", "alpha": "4", "kappa": "5", "delta": "6", "gamma": "7",
     "iota": "8", "eta": "9", "mu": "10", "epsilon": "11", "lambda": "12"}
ch.basic_publish("amq.topic", "ordered.x", b"o", pika.BasicProperties(delivery_mode=2, headers=h))
c.close()
`)
	want := []wire.UserProperty{{Key: "zeta", Value: "1"}, {Key: "beta", Value: "2"}, {Key: "x-mqtt-publish-qos", Value: "0"},
		{Key: "omega", Value: "3"}, {Key: "alpha", Value: "4"}, {Key: "kappa", Value: "5"}, {Key: "delta", Value: "6"}, {Key: "gamma", Value: "7"},
		{Key: "iota", Value: "8"}, {Key: "eta", Value: "9"}, {Key: "mu", Value: "10"}, {Key: "epsilon", Value: "11"}, {Key: "lambda", Value: "12"}}
	p := expectPublish(t, live)
	if !slices.Equal(p.Props.User, want) || p.QoS != 1 {
		t.Fatalf("QoS %d user properties\n got %v\nwant %v", p.QoS, p.Props.User, want)
	}
	s = s.Restart(t)
	back, _ := connect5(t, s, "amqp-offline", func(c *wire.Connect) { c.CleanStart = false; withExpiry(3600)(c) })
	if got := expectPublish(t, back).Props.User; !slices.Equal(got, want) {
		t.Fatalf("after a restart\n got %v\nwant %v", got, want)
	}
}

// Correlation data longer than an AMQP short string reaches an AMQP
// consumer whole, in the header x-correlation-id (as RabbitMQ carries it),
// also from a durable queue after a restart; an AMQP publisher's
// x-correlation-id reaches MQTT as correlation data.
func TestMQTT5LongCorrelationDataCrossesToAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	corr := bytes.Repeat([]byte("c0ffee-"), 50) // 350 bytes
	_, ch := s.Channel(t)
	if _, err := ch.QueueDeclare("corr", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind("corr", "rpc.#", "amq.topic", false, nil); err != nil {
		t.Fatal(err)
	}
	sub, _ := connect5(t, s, "corr-sub", nil)
	subscribe5(t, sub, "rpc/#", 1, false)
	pub, _, _ := client5(t, s, "corr-pub", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "rpc/req", QoS: 1, Payload: []byte("q"),
		Properties: &paho.PublishProperties{CorrelationData: corr}}); err != nil {
		t.Fatal(err)
	}
	if p := expectPublish(t, sub); !bytes.Equal(p.Props.CorrelationData, corr) {
		t.Fatalf("MQTT subscriber: correlation data %d bytes, want %d", len(p.Props.CorrelationData), len(corr))
	}
	check := func(ch *amqp.Channel) {
		t.Helper()
		var d amqp.Delivery
		testkit.Eventually(t, wait, "the message in the queue", func() bool {
			var ok bool
			d, ok, _ = ch.Get("corr", true)
			return ok
		})
		if got, _ := d.Headers["x-correlation-id"].(string); got != string(corr) || d.CorrelationId != "" {
			t.Fatalf("AMQP consumer: correlation_id %d bytes, x-correlation-id %d bytes; want the whole %d in the header",
				len(d.CorrelationId), len(got), len(corr))
		}
	}
	check(ch)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "rpc/req", QoS: 1, Payload: []byte("q"),
		Properties: &paho.PublishProperties{CorrelationData: corr}}); err != nil {
		t.Fatal(err)
	}
	expectPublish(t, sub)
	s = s.Restart(t)
	_, ch = s.Channel(t)
	check(ch)

	// AMQP → MQTT: the header becomes the correlation data.
	sub2, _ := connect5(t, s, "corr-sub2", nil)
	subscribe5(t, sub2, "rpc/#", 1, false)
	if err := ch.Publish("amq.topic", "rpc.resp", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("r"),
		Headers: amqp.Table{"x-correlation-id": string(corr)}}); err != nil {
		t.Fatal(err)
	}
	p := expectPublish(t, sub2)
	if !bytes.Equal(p.Props.CorrelationData, corr) || len(p.Props.User) != 0 {
		t.Fatalf("from AMQP: correlation data %d bytes, user properties %v", len(p.Props.CorrelationData), p.Props.User)
	}
}
