package main

import (
	"bufio"
	"net"
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// handMQTT is a hand-driven 3.1.1 connection: it acknowledges only what
// the test says, which no client library lets a test choose.
type handMQTT struct {
	t  *testing.T
	nc net.Conn
	r  *wire.Reader
}

func dialHandMQTT(t *testing.T, addr string) *handMQTT {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &handMQTT{t: t, nc: nc, r: wire.NewReader(bufio.NewReader(nc), 0)}
}

func (r *handMQTT) send(p wire.Packet) {
	r.t.Helper()
	if _, err := r.nc.Write(p.Append(nil, wire.V311)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *handMQTT) expect() wire.Packet {
	r.t.Helper()
	p, err := r.r.ReadPacket(wire.V311)
	if err != nil {
		r.t.Fatalf("reading MQTT packet: %v", err)
	}
	return p
}

// A persistent session's QoS 2 state survives kill -9: the message whose
// PUBREC came gets PUBREL after the restart (its PUBLISH never again), and
// the one still unacknowledged comes again with its original packet id and
// DUP set [MQTT-4.4.0-1].
func TestMQTTQoS2InflightSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	s := startBinaryOn(t, dir)
	addr := s.mqttAddr(t)
	sub := dialHandMQTT(t, addr)
	sub.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 60, ClientID: "meter-9"})
	if ack, ok := sub.expect().(*wire.Connack); !ok || ack.ReasonCode != wire.Success {
		t.Fatalf("CONNACK %+v", ack)
	}
	sub.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "meter/#", QoS: 2}}})
	if sa, ok := sub.expect().(*wire.Suback); !ok || sa.ReasonCodes[0] != 2 {
		t.Fatalf("SUBACK %+v", sa)
	}
	pub := mqttClient(t, addr, "meter-feed", true, nil)
	for _, v := range []string{"b", "c"} {
		if tok := pub.Publish("meter/1", 2, false, v); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	pb, ok1 := sub.expect().(*wire.Publish)
	pc, ok2 := sub.expect().(*wire.Publish)
	if !ok1 || !ok2 || string(pb.Payload) != "b" || string(pc.Payload) != "c" {
		t.Fatalf("deliveries %+v %+v", pb, pc)
	}
	sub.send(&wire.Ack{Kind: wire.PUBREC, PacketID: pb.PacketID})
	if a, ok := sub.expect().(*wire.Ack); !ok || a.Kind != wire.PUBREL || a.PacketID != pb.PacketID {
		t.Fatalf("want PUBREL %d, got %+v", pb.PacketID, a)
	}
	pub.Disconnect(50)
	kill9(t, s) // right after the PUBREL: its record was durable before it went

	s = startBinaryOn(t, dir)
	sub = dialHandMQTT(t, s.mqttAddr(t))
	sub.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 60, ClientID: "meter-9"})
	if ack, ok := sub.expect().(*wire.Connack); !ok || !ack.SessionPresent {
		t.Fatalf("CONNACK %+v", ack)
	}
	if a, ok := sub.expect().(*wire.Ack); !ok || a.Kind != wire.PUBREL || a.PacketID != pb.PacketID {
		t.Fatalf("want PUBREL %d first after kill -9, got %T %+v", pb.PacketID, a, a)
	}
	c2, ok := sub.expect().(*wire.Publish)
	if !ok || string(c2.Payload) != "c" || c2.PacketID != pc.PacketID || !c2.Dup {
		t.Fatalf("c resent after kill -9 as %+v; first as packet id %d", c2, pc.PacketID)
	}
	sub.send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: pb.PacketID})
	sub.send(&wire.Ack{Kind: wire.PUBREC, PacketID: pc.PacketID})
	if a, ok := sub.expect().(*wire.Ack); !ok || a.Kind != wire.PUBREL || a.PacketID != pc.PacketID {
		t.Fatalf("want PUBREL %d, got %+v", pc.PacketID, a)
	}
	sub.send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: pc.PacketID})
	sub.send(&wire.Pingreq{})
	if p, ok := sub.expect().(*wire.Pingresp); !ok {
		t.Fatalf("want PINGRESP, got %T %+v", p, p)
	}
}
