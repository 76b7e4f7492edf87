package mqtt_test

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// connectWatched connects a Paho MQTT 5 client as guest and returns the
// CONNACK and the server's DISCONNECT, when it comes.
func connectWatched(t *testing.T, s *testkit.Server, id string) (*paho.Client, *paho.Connack, chan *paho.Disconnect) {
	t.Helper()
	nc, err := net.Dial("tcp", mqttAddr(s))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Disconnect, 1)
	c := paho.NewClient(paho.ClientConfig{Conn: nc, OnServerDisconnect: func(d *paho.Disconnect) { got <- d }})
	ca, err := c.Connect(ctx5(t), &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, ca, got
}

func expectDisconnect(t *testing.T, got chan *paho.Disconnect, code byte, reason string) {
	t.Helper()
	select {
	case d := <-got:
		r := ""
		if d.Properties != nil {
			r = d.Properties.ReasonString
		}
		if d.ReasonCode != code || !strings.Contains(r, reason) {
			t.Fatalf("DISCONNECT 0x%02x %q, want 0x%02x with %q", d.ReasonCode, r, code, reason)
		}
	case <-time.After(wait):
		t.Fatalf("no DISCONNECT 0x%02x", code)
	}
}

// The node-wide mqtt_max_packet_size is told to 5.0 clients in CONNACK and
// a larger PUBLISH ends the connection with DISCONNECT 0x95 Packet too
// large; the vhost's max-message-size bounds the payload the same way,
// for connections open when it is set too; 3.1.1 clients are closed.
func TestMQTTMessageSizeLimits(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withMQTT(func(c *config.Config) { c.MQTTMaxPacketSize = 4096 }))
	c, ca, disc := connectWatched(t, s, "big5")
	if mp := ca.Properties.MaximumPacketSize; mp == nil || *mp != 4096 {
		t.Fatalf("CONNACK Maximum Packet Size %v, want 4096", mp)
	}
	if _, err := c.Publish(ctx5(t), &paho.Publish{Topic: "t", QoS: 1, Payload: make([]byte, 3000)}); err != nil {
		t.Fatalf("a publish under the limit: %v", err)
	}
	_, _ = c.Publish(ctx5(t), &paho.Publish{Topic: "t", QoS: 0, Payload: make([]byte, 5000)})
	expectDisconnect(t, disc, 0x95, "limit 4096")

	// The vhost's limit, set while c2 is connected, applies to c2's next
	// publish; a payload of exactly the limit passes.
	c2, _, disc2 := connectWatched(t, s, "vhost5")
	admin(t, s, "PUT", "/api/vhost-limits/%2F/max-message-size", map[string]int{"value": 1000})
	if _, err := c2.Publish(ctx5(t), &paho.Publish{Topic: "t", QoS: 1, Payload: make([]byte, 1000)}); err != nil {
		t.Fatalf("a publish of the vhost's max-message-size: %v", err)
	}
	_, _ = c2.Publish(ctx5(t), &paho.Publish{Topic: "t", QoS: 0, Payload: make([]byte, 1001)})
	expectDisconnect(t, disc2, 0x95, "message size 1001 is larger than configured max size 1000 (max-message-size of vhost '/')")

	// 3.1.1 has no DISCONNECT from the server: the connection is closed,
	// and the oversized message is not delivered.
	watcher := client3(t, s, "watcher")
	seen := make(chan []byte, 4)
	done(t, watcher.Subscribe("t3", 1, func(_ paho3.Client, m paho3.Message) { seen <- m.Payload() }))
	lost := make(chan error, 1)
	c3 := client3(t, s, "v311", func(o *paho3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho3.Client, err error) { lost <- err })
	})
	done(t, c3.Publish("t3", 1, false, bytes.Repeat([]byte("a"), 1000)))
	c3.Publish("t3", 1, false, bytes.Repeat([]byte("b"), 1001))
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("a 3.1.1 client publishing over the vhost's max-message-size stayed connected")
	}
	// The watcher gets the message that fitted, then the next one
	// published, never the oversized one between them.
	c4 := client3(t, s, "after")
	done(t, c4.Publish("t3", 1, false, "c"))
	for _, want := range []string{strings.Repeat("a", 1000), "c"} {
		select {
		case got := <-seen:
			if string(got) != want {
				t.Fatalf("watcher got %d bytes %.10q…, want %d bytes %.10q…", len(got), got, len(want), want)
			}
		case <-time.After(wait):
			t.Fatalf("watcher did not get %.10q…", want)
		}
	}
}
