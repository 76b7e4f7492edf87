package mqtt_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
)

// A persistent session that takes over the connection of a clean session
// with the same client id starts a new session: the clean session's state
// "MUST NOT be reused in any subsequent Session" [MQTT-3.1.2-6], so no
// session is present and the clean session's subscriptions are gone (they
// lived in a queue a restart drops, review7 F2).
func TestPersistentTakeoverOfACleanSessionStartsAfresh(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	lost := make(chan error, 1)
	first := client3(t, s, "shifty", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})
	done(t, first.Subscribe("clean/topic", 1, func(paho.Client, paho.Message) {}))

	in := newInbox()
	o := paho.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("shifty").SetCleanSession(false).
		SetAutoReconnect(false).SetDefaultPublishHandler(in.handler)
	second := paho.NewClient(o)
	tok := second.Connect()
	done(t, tok)
	defer second.Disconnect(50)
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("the clean session's connection was not taken over")
	}
	if tok.(*paho.ConnectToken).SessionPresent() {
		t.Fatal("session present after taking over a clean session: its state was reused")
	}
	pub := client3(t, s, "pub")
	done(t, pub.Publish("clean/topic", 1, false, "for the clean session only"))
	done(t, second.Subscribe("own/topic", 1, nil))
	done(t, pub.Publish("own/topic", 1, false, "mine"))
	got := in.wait(t, 1)
	if string(got[0].Payload()) != "mine" {
		t.Fatalf("the persistent session got %q from the clean session's subscription", got[0].Payload())
	}
}
