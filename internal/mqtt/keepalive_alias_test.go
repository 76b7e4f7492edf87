package mqtt_test

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// mqtt_max_keepalive: a 5.0 client asking for a longer keep-alive, or none,
// is told the maximum as Server Keep Alive and held to it; a 3.1.1 client
// asking for more is refused, as Mosquitto does.
func TestMQTTMaxKeepAlive(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) { c.MQTTMaxKeepAlive = 1 })
	for _, asked := range []uint16{0, 60} {
		r, ack := connect5(t, s, "sleepy", func(c *wire.Connect) { c.KeepAlive = asked })
		if ack.ReasonCode != 0 || !ack.Props.Has(wire.PropServerKeepAlive) || ack.Props.ServerKeepAlive != 1 {
			t.Fatalf("keep-alive %d: CONNACK %+v, want Server Keep Alive 1", asked, ack)
		}
		// Silent past 1.5 × the server's keep-alive: disconnected.
		start := time.Now()
		if d, ok := r.Expect().(*wire.Disconnect); !ok || d.ReasonCode != wire.KeepAliveTimeout {
			t.Fatalf("want DISCONNECT 0x8D, got %+v", d)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("disconnected after %v, not after the server's keep-alive", waited)
		}
	}
	// Within the maximum: no Server Keep Alive.
	if _, ack := connect5(t, s, "brisk", func(c *wire.Connect) { c.KeepAlive = 1 }); ack.Props.Has(wire.PropServerKeepAlive) {
		t.Fatalf("CONNACK %+v overrides a keep-alive within the maximum", ack)
	}
	r3 := testkit.DialMQTT(t, s)
	r3.Send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: "old"})
	if ack, ok := r3.Expect().(*wire.Connack); !ok || ack.ReasonCode != wire.ClientIDNotValid {
		t.Fatalf("3.1.1 beyond the maximum keep-alive: %+v, want identifier rejected", ack)
	}
}

// A client with a Topic Alias Maximum gets aliases: the first PUBLISH on a
// topic carries topic and alias, later ones the alias alone; a client
// without one never gets an alias [MQTT-3.3.2-12].
func TestMQTT5TopicAliasesTowardTheClient(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, max := range []uint16{0, 2} {
		r, _ := connect5(t, s, "aliased", func(c *wire.Connect) {
			if max > 0 {
				c.Props.TopicAliasMaximum = max
				c.Props.Set(wire.PropTopicAliasMaximum)
			}
		})
		r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "fleet/#", QoS: 0}}})
		r.Expect()
		pub, _ := connect5(t, s, "fleet-pub", nil)
		topics := []string{"fleet/truck/1", "fleet/truck/1", "fleet/truck/2", "fleet/truck/3", "fleet/truck/3", "fleet/truck/2"}
		for _, tp := range topics {
			pub.Send(&wire.Publish{Topic: tp, Payload: []byte(tp)})
		}
		known := map[uint16]string{}
		aliasOnly := 0
		for i, tp := range topics {
			p, ok := r.Expect().(*wire.Publish)
			if !ok {
				t.Fatalf("want PUBLISH, got %+v", p)
			}
			if max == 0 {
				if p.Props.Has(wire.PropTopicAlias) || p.Topic != tp {
					t.Fatalf("no alias maximum: PUBLISH %q alias %v", p.Topic, p.Props.Has(wire.PropTopicAlias))
				}
				continue
			}
			got := p.Topic
			if p.Props.Has(wire.PropTopicAlias) {
				a := p.Props.TopicAlias
				if a == 0 || a > max {
					t.Fatalf("alias %d beyond the client's maximum %d", a, max)
				}
				if got == "" {
					got = known[a]
					aliasOnly++
				} else {
					known[a] = got
				}
			}
			if got != tp || string(p.Payload) != tp {
				t.Fatalf("message %d: topic %q (sent as %q) payload %q, want %q", i, got, p.Topic, p.Payload, tp)
			}
		}
		if max > 0 && (len(known) != 2 || aliasOnly != 2) {
			t.Fatalf("%d aliases set up and %d PUBLISHes by alias alone, want 2 and 2", len(known), aliasOnly)
		}
		r.Send(&wire.Disconnect{})
		pub.Send(&wire.Disconnect{})
	}
}
