package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
)

// admin calls the HTTP API as guest (the default administrator).
func admin(t *testing.T, s *testkit.Server, method, path string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, s.HTTPURL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

// device makes user with full permissions in "/" and RabbitMQ's device
// ACL on amq.topic: publish under sensors/<user>/, subscribe to that and
// to cmd/<client id>/.
func device(t *testing.T, s *testkit.Server, user string) {
	t.Helper()
	admin(t, s, "PUT", "/api/users/"+user, map[string]string{"password": "pw"})
	admin(t, s, "PUT", "/api/permissions/%2F/"+user, map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
	admin(t, s, "PUT", "/api/topic-permissions/%2F/"+user, map[string]string{"exchange": "amq.topic",
		"write": `^sensors\.{username}\.`, "read": `^(sensors\.{username}\.|cmd\.{client_id}\.)`})
}

// TestTopicPermissionsMQTT311: a device may subscribe to and publish on its
// own topics only; a refused SUBSCRIBE gets 0x80, a refused PUBLISH is
// acknowledged and dropped (3.1.1 has no refusal code).
func TestTopicPermissionsMQTT311(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	device(t, s, "dev1")
	watcher := client3(t, s, "watcher")
	seen := make(chan string, 10)
	if tok := watcher.Subscribe("sensors/#", 1, func(_ paho3.Client, m paho3.Message) { seen <- m.Topic() }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c := client3(t, s, "dev1-c", func(o *paho3.ClientOptions) { o.SetUsername("dev1").SetPassword("pw") })
	tok := c.SubscribeMultiple(map[string]byte{"sensors/dev1/#": 1, "sensors/dev2/#": 1, "cmd/dev1-c/#": 1, "cmd/other/#": 1}, nil)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	want := map[string]byte{"sensors/dev1/#": 1, "sensors/dev2/#": 0x80, "cmd/dev1-c/#": 1, "cmd/other/#": 0x80}
	for f, code := range tok.(*paho3.SubscribeToken).Result() {
		if want[f] != code {
			t.Errorf("SUBACK for %s: 0x%02x, want 0x%02x", f, code, want[f])
		}
	}
	for _, qos := range []byte{0, 1, 2} {
		if p := c.Publish("sensors/dev2/temp", qos, false, "forged"); !p.WaitTimeout(wait) || p.Error() != nil {
			t.Fatalf("refused QoS %d publish not acknowledged: %v", qos, p.Error())
		}
	}
	if p := c.Publish("sensors/dev1/temp", 1, false, "21.5"); !p.WaitTimeout(wait) || p.Error() != nil {
		t.Fatal(p.Error())
	}
	// The watcher gets the allowed message, and nothing published before
	// it on the same connection.
	if got := <-seen; got != "sensors/dev1/temp" {
		t.Fatalf("watcher got %s first, want sensors/dev1/temp (the refused publishes were routed)", got)
	}
}

// client5As connects a Paho MQTT 5 client as user.
func client5As(t *testing.T, s *testkit.Server, id, user string) (*paho.Client, *paho.Connack, error) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte("pw"), PasswordFlag: true})
	if err == nil {
		t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	}
	return c, ca, err
}

// TestTopicPermissionsMQTT5: refused SUBSCRIBE and PUBLISH get 0x87 Not
// authorized; allowed ones go through.
func TestTopicPermissionsMQTT5(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	device(t, s, "dev1")
	watcher, inbox, _ := client5(t, s, "watcher", nil)
	sub5(t, watcher, 0, paho.SubscribeOptions{Topic: "sensors/#", QoS: 1})
	c, _, err := client5As(t, s, "dev1-c", "dev1")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := c.Subscribe(ctx5(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "sensors/dev1/+", QoS: 1}, {Topic: "sensors/#", QoS: 1}, {Topic: "cmd/dev1-c/#", QoS: 2}, {Topic: "$share/g/sensors/dev2/x", QoS: 1}}})
	if sa == nil {
		t.Fatal(err) // Paho reports the refusals as an error, with the SUBACK
	}
	if want := []byte{1, 0x87, 2, 0x87}; !bytes.Equal(sa.Reasons, want) {
		t.Errorf("SUBACK reasons % x, want % x", sa.Reasons, want)
	}
	for _, qos := range []byte{1, 2} {
		res, _ := c.Publish(ctx5(t), &paho.Publish{Topic: "sensors/dev2/temp", QoS: qos, Payload: []byte("forged")})
		if res == nil || res.ReasonCode != 0x87 {
			t.Errorf("refused QoS %d publish: %+v, want reason 0x87", qos, res)
		}
	}
	if _, err := c.Publish(ctx5(t), &paho.Publish{Topic: "sensors/dev2/temp", QoS: 0, Payload: []byte("forged")}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Publish(ctx5(t), &paho.Publish{Topic: "sensors/dev1/temp", QoS: 1, Payload: []byte("21.5")})
	if err != nil || res.ReasonCode != 0 {
		t.Fatalf("allowed publish: %+v %v", res, err)
	}
	if got := inbox.wait(t, 1); got[0].Topic != "sensors/dev1/temp" {
		t.Fatalf("watcher got %s first, want sensors/dev1/temp", got[0].Topic)
	}
}

// TestMQTTVHostPermissionAndLimits: a user without permission in the MQTT
// vhost is refused at CONNECT; one without write on amq.topic cannot
// publish; max-connections refuses with 0x97 (5.0) and 0x03 (3.1.1).
func TestMQTTVHostPermissionAndLimits(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	admin(t, s, "PUT", "/api/users/noperm", map[string]string{"password": "pw"})
	if _, ca, err := client5As(t, s, "np", "noperm"); err == nil || ca == nil || ca.ReasonCode != 0x87 {
		t.Errorf("no permission in the vhost: %+v %v, want CONNACK 0x87", ca, err)
	}
	admin(t, s, "PUT", "/api/users/reader", map[string]string{"password": "pw"})
	admin(t, s, "PUT", "/api/permissions/%2F/reader", map[string]string{"configure": ".*", "write": "", "read": ".*"})
	c, _, err := client5As(t, s, "rd", "reader")
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := c.Publish(ctx5(t), &paho.Publish{Topic: "a/b", QoS: 1, Payload: []byte("x")}); res == nil || res.ReasonCode != 0x87 {
		t.Errorf("publish without write on amq.topic: %+v, want 0x87", res)
	}
	sub5(t, c, 0, paho.SubscribeOptions{Topic: "a/#", QoS: 1})

	admin(t, s, "PUT", "/api/user-limits/reader/max-connections", map[string]int{"value": 1})
	if _, ca, err := client5As(t, s, "rd2", "reader"); err == nil || ca == nil || ca.ReasonCode != 0x97 {
		t.Errorf("over the user's max-connections: %+v %v, want CONNACK 0x97", ca, err)
	}
	o := paho3.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("rd3").SetProtocolVersion(4).SetUsername("reader").SetPassword("pw").
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	tok := paho3.NewClient(o).Connect()
	tok.WaitTimeout(wait)
	if ct, ok := tok.(*paho3.ConnectToken); !ok || ct.ReturnCode() != 3 {
		t.Errorf("3.1.1 over the limit: %v, want return code 3", tok.Error())
	}
	// The vhost's limit counts every user.
	admin(t, s, "DELETE", "/api/user-limits/reader/max-connections", nil)
	admin(t, s, "PUT", "/api/vhost-limits/%2F/max-connections", map[string]int{"value": 1})
	if _, ca, err := client5As(t, s, "g", "reader"); err == nil || ca == nil || ca.ReasonCode != 0x97 {
		t.Errorf("over the vhost's max-connections: %+v %v, want CONNACK 0x97", ca, err)
	}
}

// TestDeletingUserOrVHostDisconnectsMQTT: a deleted user's MQTT 5 client
// gets DISCONNECT 0x98 Administrative action, and so does every client of
// a deleted vhost.
func TestDeletingUserOrVHostDisconnectsMQTT(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	device(t, s, "dev1")
	connect := func(id, user string) chan byte {
		nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan byte, 1)
		c := paho.NewClient(paho.ClientConfig{Conn: nc, OnServerDisconnect: func(d *paho.Disconnect) { got <- d.ReasonCode }})
		pw := []byte("pw")
		if user == "guest" {
			pw = []byte("guest")
		}
		if _, err := c.Connect(ctx5(t), &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true,
			Username: user, UsernameFlag: true, Password: pw, PasswordFlag: true}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
		return got
	}
	dev := connect("d1", "dev1")
	g := connect("g1", "guest")
	admin(t, s, "DELETE", "/api/users/dev1", nil)
	select {
	case rc := <-dev:
		if rc != 0x98 {
			t.Errorf("deleted user's client: DISCONNECT 0x%02x, want 0x98", rc)
		}
	case <-time.After(wait):
		t.Fatal("the deleted user's MQTT client stayed connected")
	}
	admin(t, s, "DELETE", "/api/vhosts/%2F", nil)
	select {
	case rc := <-g:
		if rc != 0x98 {
			t.Errorf("deleted vhost's client: DISCONNECT 0x%02x, want 0x98", rc)
		}
	case <-time.After(wait):
		t.Fatal("the deleted vhost's MQTT client stayed connected")
	}
}
