package mqtt_test

import (
	"testing"
	"time"

	paho3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
)

// An open MQTT 3.1.1 connection whose topic permission is narrowed: its
// subscription made before keeps delivering (as in RabbitMQ, checked at
// SUBSCRIBE only), a new SUBSCRIBE is refused with 0x80, and its next
// PUBLISH is dropped. Deleting the user then closes the connection (3.1.1
// has no DISCONNECT from the server).
func TestMQTT311PermissionChangeAndUserDeletion(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	device(t, s, "dev1")
	seen := make(chan string, 10)
	lost := make(chan error, 1)
	c := client3(t, s, "dev1-c", func(o *paho3.ClientOptions) {
		o.SetUsername("dev1").SetPassword("pw").SetConnectionLostHandler(func(_ paho3.Client, err error) { lost <- err })
	})
	done(t, c.Subscribe("sensors/dev1/#", 1, func(_ paho3.Client, m paho3.Message) { seen <- string(m.Payload()) }))
	watcher := client3(t, s, "watcher")
	watched := make(chan string, 10)
	done(t, watcher.Subscribe("sensors/#", 1, func(_ paho3.Client, m paho3.Message) { watched <- string(m.Payload()) }))
	next := func(ch chan string, want string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(wait):
			t.Fatalf("%q not delivered", want)
		}
	}

	admin(t, s, "PUT", "/api/topic-permissions/%2F/dev1", map[string]string{"exchange": "amq.topic", "write": "^$", "read": "^$"})
	tok := c.Subscribe("sensors/dev1/more/#", 1, nil)
	done(t, tok)
	if code := tok.(*paho3.SubscribeToken).Result()["sensors/dev1/more/#"]; code != 0x80 {
		t.Errorf("SUBSCRIBE after read was revoked: 0x%02x, want 0x80", code)
	}
	done(t, c.Publish("sensors/dev1/t", 1, false, "dropped")) // acknowledged, not routed
	done(t, watcher.Publish("sensors/dev1/t", 1, false, "kept"))
	next(watched, "kept") // the dropped one came first on c, so it would have been first here
	next(seen, "kept")    // the old subscription still delivers

	admin(t, s, "DELETE", "/api/users/dev1", nil)
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("the deleted user's 3.1.1 connection stayed open")
	}
}
