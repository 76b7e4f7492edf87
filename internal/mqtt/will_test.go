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
	s := testkit.Start(t)
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
	start := time.Now()
	soon, _ := connect5(t, s, "soon", withWill("soon", 1))
	_ = soon.NC.Close()
	if m := in.wait(t, 2)[1]; m.Topic != "gone/soon" {
		t.Fatalf("will %q", m.Topic)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("the will went after %v, before the session ended", waited)
	}
}
