package mqtt_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// The will goes when its delay passes or the session ends, whichever is
// first [MQTT-3.1.2-8]: a long will delay does not outlive the session.
func TestMQTT5WillGoesAtSessionEnd(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	watcher, in, _ := client5(t, s, "will-watcher", nil)
	sub5(t, watcher, 0, paho.SubscribeOptions{Topic: "gone/#", QoS: 1})
	withWill := func(id string, expiry uint32) func(*wire.Connect) {
		return func(c *wire.Connect) {
			c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 1, "gone/"+id, []byte(id)
			c.WillProps.WillDelay = 3600
			c.WillProps.Set(wire.PropWillDelay)
			if expiry > 0 {
				withExpiry(expiry)(c)
			}
		}
	}
	// Session expiry 0: the session ends with the connection, so does the wait.
	now, _ := connect5(t, s, "now", withWill("now", 0))
	_ = now.NC.Close()
	if m := in.wait(t, 1)[0]; m.Topic != "gone/now" {
		t.Fatalf("will %q", m.Topic)
	}
	// Session expiry 1 s, will delay an hour: the will goes with the session.
	soon, _ := connect5(t, s, "soon", withWill("soon", 1))
	_ = soon.NC.Close()
	// Its connection is counted closed after the teardown armed the timers.
	testkit.Eventually(t, wait, "the session left", func() bool { return s.MQTTStats().ConnectionsOpen == 1 })
	// A will due in this Advance would be routed before the marker.
	clk.Advance(time.Second - time.Millisecond)
	pub, _, _ := client5(t, s, "marker", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "gone/marker", QoS: 1, Payload: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 2)[1]; m.Topic != "gone/marker" {
		t.Fatalf("the will %q went before the session ended", m.Topic)
	}
	clk.Advance(time.Millisecond)
	if m := in.wait(t, 3)[2]; m.Topic != "gone/soon" {
		t.Fatalf("will %q", m.Topic)
	}
}

// A reconnect with Clean Start ends the old session instead of resuming
// it, so a will waiting for its delay goes at once [MQTT-3.1.2-8]; taking
// over a live connection with Clean Start does the same.
func TestMQTT5CleanStartReconnectSendsTheDelayedWill(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	watcher, in, _ := client5(t, s, "cs-watcher", nil)
	sub5(t, watcher, 0, paho.SubscribeOptions{Topic: "cs/#", QoS: 1})
	withWill := func(c *wire.Connect) {
		c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 1, "cs/"+c.ClientID, []byte("gone")
		c.WillProps.WillDelay = 3600
		c.WillProps.Set(wire.PropWillDelay)
		withExpiry(3600)(c)
	}
	// Gone, then back with Clean Start while the will waits.
	r, _ := connect5(t, s, "dropped", withWill)
	_ = r.NC.Close()
	testkit.Eventually(t, wait, "the dropped session torn down", func() bool { return s.MQTTStats().ConnectionsOpen == 1 })
	connect5(t, s, "dropped", nil) // Clean Start
	if m := in.wait(t, 1)[0]; m.Topic != "cs/dropped" {
		t.Fatalf("will %q", m.Topic)
	}
	// Taken over while connected.
	connect5(t, s, "live", withWill)
	connect5(t, s, "live", nil)
	if m := in.wait(t, 2)[1]; m.Topic != "cs/live" {
		t.Fatalf("will %q", m.Topic)
	}
}
