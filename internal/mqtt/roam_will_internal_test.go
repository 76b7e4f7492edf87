package mqtt

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// idleConsumer stands in for another node's connection consuming a
// session's queue (its forwarded consumer).
type idleConsumer struct{}

func (idleConsumer) TryDeliver(broker.Delivery) broker.Verdict { return broker.Refuse }
func (idleConsumer) Cancelled(*broker.Queue)                   {}

// A delayed will pending here when another node's CONNECT asks to resume
// the session (TakenOver) is not dropped: that CONNECT may yet be refused
// (review11 F2). At its time it goes if no connection consumes the
// session's queue, and not if one does (the session was resumed there)
// [MQTT-3.1.3-9]. Before, it was dropped at the request, and a refused
// resume meant no will at all.
func TestDelayedWillOfASessionAnotherNodeAsksToResume(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := serveTest(t, newTestBroker(clk), "", Config{Cluster: &signalPeers{}})
	watch, _ := connectRaw5(t, s.addr, "watch", true, 0)
	watch.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "gone/#"}}})
	if _, ok := watch.expect().(*wire.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	leaveWithWill := func(id string) {
		r := dialRaw(t, s.addr, wire.V5)
		c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: id,
			Will: true, WillTopic: "gone/" + id, WillPayload: []byte(id)}
		c.Props.SessionExpiry = 3600
		c.Props.Set(wire.PropSessionExpiry)
		c.WillProps.WillDelay = 30
		c.WillProps.Set(wire.PropWillDelay)
		r.send(c)
		if ack, ok := r.expect().(*wire.Connack); !ok || ack.ReasonCode != 0 {
			t.Fatalf("%s: %+v", id, ack)
		}
		_ = r.nc.Close() // no DISCONNECT: the will waits for its delay
		waitFor(t, id+"'s will to wait", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.wills[id] != nil
		})
		s.TakenOver("/", id, false) // another node's CONNECT resumes the session
	}
	leaveWithWill("refused") // that CONNECT is then refused: nobody consumes the queue
	leaveWithWill("resumed") // that CONNECT resumed the session: its consumer
	q, err := s.b.VHost("/").Queue(sessionQueue("resumed"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(idleConsumer{}, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second)
	p, ok := watch.expect().(*wire.Publish)
	if !ok || p.Topic != "gone/refused" {
		t.Fatalf("want the will of the session whose resume was refused, got %+v", p)
	}
	// The other will, due at the same time, would have been routed before
	// this marker.
	pub, _ := connectRaw5(t, s.addr, "marker", true, 0)
	pub.send(&wire.Publish{Topic: "gone/marker", Payload: []byte("m")})
	if p, ok := watch.expect().(*wire.Publish); !ok || p.Topic != "gone/marker" {
		t.Fatalf("want the marker, got %+v (the will of a session resumed elsewhere went)", p)
	}
}
