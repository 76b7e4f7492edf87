package mqtt_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
)

// connectAs5 connects a Paho MQTT 5 client as user with password pw and the
// given will (nil for none); it returns the client, its CONNACK and its
// network connection (to drop it without DISCONNECT).
func connectAs5(t *testing.T, s *testkit.Server, id, user string, will *paho.WillMessage) (*paho.Client, *paho.Connack, net.Conn, error) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true, WillMessage: will,
		Username: user, UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	return c, ca, nc, err
}

// TestClientIDVariableCannotEscapeItsSubtree: {client_id} is matched
// against the topic as a routing key, so a "." or "/" in the client id
// must not let it reach another device's levels, and a "+" must not act
// as a wildcard in a filter (finding 1).
func TestClientIDVariableCannotEscapeItsSubtree(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	admin(t, s, "PUT", "/api/users/dev", map[string]string{"password": "pw"})
	admin(t, s, "PUT", "/api/permissions/%2F/dev", map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
	admin(t, s, "PUT", "/api/topic-permissions/%2F/dev", map[string]string{"exchange": "amq.topic",
		"write": `^sensors\.{client_id}\.`, "read": `^cmd\.{client_id}\.`})

	pub := func(id, topic string) byte {
		c, _, _, err := connectAs5(t, s, id, "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(&paho.Disconnect{})
		res, err := c.Publish(ctx5(t), &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("x")})
		if res == nil {
			t.Fatal(err)
		}
		return res.ReasonCode
	}
	sub := func(id, filter string) byte {
		c, _, _, err := connectAs5(t, s, id, "dev", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Disconnect(&paho.Disconnect{})
		sa, err := c.Subscribe(ctx5(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
		if sa == nil {
			t.Fatal(err)
		}
		return sa.Reasons[0]
	}
	if got := pub("d1.temp", "sensors/d1/temp/x"); got != 0x87 {
		t.Errorf("client d1.temp publishing in d1's subtree: 0x%02x, want 0x87", got)
	}
	if got := pub("a.b", "sensors/a.b/x"); got >= 0x80 {
		t.Errorf("client a.b publishing in its own subtree: 0x%02x, want success", got)
	}
	if got := pub("d1/x", "sensors/d1/x/y"); got != 0x87 {
		t.Errorf("client d1/x publishing under sensors/d1/x/ (inside d1's subtree): 0x%02x, want 0x87", got)
	}
	if got := sub("d1.reboot", "cmd/d1/reboot/#"); got != 0x87 {
		t.Errorf("client d1.reboot subscribing to d1's commands: 0x%02x, want 0x87", got)
	}
	if got := sub("+", "cmd/+/#"); got != 0x87 {
		t.Errorf("client + subscribing to every device's commands: 0x%02x, want 0x87", got)
	}
	if got := sub("d2", "cmd/d2/#"); got != 1 {
		t.Errorf("client d2 subscribing to its commands: 0x%02x, want 1", got)
	}
}

// willDevice makes user with write on sensors/<username>/ only.
func willDevice(t *testing.T, s *testkit.Server, user string) {
	admin(t, s, "PUT", "/api/users/"+user, map[string]string{"password": "pw"})
	admin(t, s, "PUT", "/api/permissions/%2F/"+user, map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
	admin(t, s, "PUT", "/api/topic-permissions/%2F/"+user, map[string]string{"exchange": "amq.topic",
		"write": `^sensors\.{username}\.`, "read": `^sensors\.{username}\.`})
}

// TestWillNeedsWritePermission: a will the user may not publish is refused
// at CONNECT (5.0: 0x87, 3.1.1: 0x05), and one allowed at CONNECT is not
// published if the permission is gone when the connection drops
// (finding 2).
func TestWillNeedsWritePermission(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	willDevice(t, s, "d1")
	if _, ca, _, err := connectAs5(t, s, "w5", "d1", &paho.WillMessage{Topic: "sensors/d2/status", QoS: 1, Retain: true, Payload: []byte("forged")}); err == nil || ca == nil || ca.ReasonCode != 0x87 {
		t.Errorf("5.0 CONNECT with a forbidden will: %+v %v, want CONNACK 0x87", ca, err)
	}
	o := paho3.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("w3").SetProtocolVersion(4).SetUsername("d1").SetPassword("pw").
		SetWill("sensors/d2/status", "forged", 1, true).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	tok := paho3.NewClient(o).Connect()
	tok.WaitTimeout(wait)
	if ct, ok := tok.(*paho3.ConnectToken); !ok || ct.ReturnCode() != 5 {
		t.Errorf("3.1.1 CONNECT with a forbidden will: %v, want return code 5", tok.Error())
	}

	// Allowed at CONNECT, revoked before the connection drops.
	watcher := newInbox()
	w := client3(t, s, "watcher")
	done(t, w.Subscribe("sensors/#", 1, watcher.handler))
	_, _, nc, err := connectAs5(t, s, "d1", "d1", &paho.WillMessage{Topic: "sensors/d1/status", QoS: 1, Payload: []byte("gone")})
	if err != nil {
		t.Fatal(err)
	}
	admin(t, s, "PUT", "/api/topic-permissions/%2F/d1", map[string]string{"exchange": "amq.topic", "write": `^nothing$`, "read": ""})
	nc.Close()
	// Taking over the client id waits for the old connection's end (will
	// included), so the marker published after it comes after any will.
	client5(t, s, "d1", nil)
	done(t, w.Publish("sensors/marker", 1, false, "m"))
	if got := watcher.wait(t, 1); got[0].Topic() != "sensors/marker" {
		t.Fatalf("watcher got %s (%q) first, want the marker: the will was published without permission", got[0].Topic(), got[0].Payload())
	}
}

// TestResumedSessionChecksUserAndACL: another user connecting with a
// client id does not inherit its session, and a resumed session's
// subscriptions the user may no longer read are dropped (finding 3).
func TestResumedSessionChecksUserAndACL(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, u := range []string{"A", "B"} {
		admin(t, s, "PUT", "/api/users/"+u, map[string]string{"password": "pw"})
		admin(t, s, "PUT", "/api/permissions/%2F/"+u, map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
		admin(t, s, "PUT", "/api/topic-permissions/%2F/"+u, map[string]string{"exchange": "amq.topic",
			"write": ".*", "read": `^(users\.{username}\.|other\.)`})
	}
	as := func(user string) func(*paho3.ClientOptions) {
		return func(o *paho3.ClientOptions) { o.SetUsername(user).SetPassword("pw").SetCleanSession(false) }
	}
	a := client3(t, s, "A", as("A"))
	done(t, a.Subscribe("users/A/#", 1, nil))
	a.Disconnect(50)

	box := newInbox()
	o := paho3.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("A").SetProtocolVersion(4).SetUsername("B").SetPassword("pw").
		SetCleanSession(false).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait).SetDefaultPublishHandler(box.handler)
	b := paho3.NewClient(o)
	tok := b.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer b.Disconnect(50)
	if tok.(*paho3.ConnectToken).SessionPresent() {
		t.Errorf("B connecting as client A got A's session (session present)")
	}
	done(t, b.Subscribe("users/B/#", 1, nil))
	g := client3(t, s, "publisher")
	done(t, g.Publish("users/A/secret", 1, false, "for A"))
	done(t, g.Publish("users/B/marker", 1, false, "m"))
	if got := box.wait(t, 1); got[0].Topic() != "users/B/marker" {
		t.Fatalf("B got %s first, want its marker: it read A's messages", got[0].Topic())
	}
	b.Disconnect(50)

	// A's own session, with a read permission revoked while away.
	a = client3(t, s, "A2", as("A"))
	done(t, a.Subscribe("users/A/#", 1, nil))
	a.Disconnect(50)
	admin(t, s, "PUT", "/api/topic-permissions/%2F/A", map[string]string{"exchange": "amq.topic", "write": ".*", "read": `^other\.`})
	box2 := newInbox()
	a = client3(t, s, "A2", as("A"), func(o *paho3.ClientOptions) { o.SetDefaultPublishHandler(box2.handler) })
	done(t, a.Subscribe("other/#", 1, nil))
	done(t, g.Publish("users/A/secret", 1, false, "for A"))
	done(t, g.Publish("other/marker", 1, false, "m"))
	if got := box2.wait(t, 1); got[0].Topic() != "other/marker" {
		t.Fatalf("A got %s first, want the marker: a revoked subscription was reloaded", got[0].Topic())
	}
}

// TestMQTTConnectionLimitReleased: connections that end give their place
// back: with max-connections 2, five connect/disconnect rounds (one ended
// by DISCONNECT, one by dropping the socket) all succeed (finding 8).
func TestMQTTConnectionLimitReleased(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	willDevice(t, s, "lim")
	admin(t, s, "PUT", "/api/user-limits/lim/max-connections", map[string]int{"value": 2})
	for i := range 5 {
		c, ca, nc, err := connectAs5(t, s, "lim-c", "lim", nil)
		if err != nil {
			t.Fatalf("round %d: %+v %v", i, ca, err)
		}
		if i%2 == 0 {
			_ = c.Disconnect(&paho.Disconnect{})
		} else {
			nc.Close()
		}
	}
}
