package cluster

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// rawMQTT is a hand-driven 3.1.1 connection: it stops a QoS 2 flow where
// a client library would not.
type rawMQTT struct {
	t  *testing.T
	nc net.Conn
	r  *wire.Reader
}

func dialRawMQTT(t *testing.T, url, id string) (*rawMQTT, *wire.Connack) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(15 * time.Second))
	r := &rawMQTT{t: t, nc: nc, r: wire.NewReader(bufio.NewReader(nc), 0)}
	r.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, KeepAlive: 60, ClientID: id})
	ack, ok := r.expect().(*wire.Connack)
	if !ok || ack.ReasonCode != 0 {
		t.Fatalf("want CONNACK 0, got %+v", ack)
	}
	return r, ack
}

func (r *rawMQTT) send(p wire.Packet) {
	r.t.Helper()
	if _, err := r.nc.Write(p.Append(nil, wire.V311)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawMQTT) expect() wire.Packet {
	r.t.Helper()
	p, err := r.r.ReadPacket(wire.V311)
	if err != nil {
		r.t.Fatalf("reading MQTT packet: %v", err)
	}
	return p
}

// A QoS 2 delivery whose subscriber sent PUBREC on one node and resumes
// its session on another before PUBCOMP is not lost: that node has no
// record of the PUBREC (QoS 2 state is per node), so it sends the PUBLISH
// again (DUP) and the flow completes there. (Before,
// the queue message was acked at PUBREC: the other node sent neither
// PUBREL nor PUBLISH, and the message was gone.)
func TestMQTTQoS2DeliveryResumedOnAnotherNodeBeforePUBCOMP(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, bn := range nodes {
		urls[i], _ = bn.serveMQTT(t, true)
	}
	sub, _ := dialRawMQTT(t, urls[0], "q2roam")
	sub.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "q2/#", QoS: 2}}})
	if _, ok := sub.expect().(*wire.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	pub := dialMQTT(t, urls[2], "q2pub", true)
	mqttDo(t, pub.Publish("q2/x", 2, false, "exactly-once"))

	p, ok := sub.expect().(*wire.Publish)
	if !ok || string(p.Payload) != "exactly-once" || p.QoS != 2 {
		t.Fatalf("want the QoS 2 PUBLISH, got %+v", p)
	}
	sub.send(&wire.Ack{Kind: wire.PUBREC, PacketID: p.PacketID})
	if a, ok := sub.expect().(*wire.Ack); !ok || a.Kind != wire.PUBREL || a.PacketID != p.PacketID {
		t.Fatalf("want PUBREL %d, got %+v", p.PacketID, a)
	}
	_ = sub.nc.Close() // gone before PUBCOMP

	again, ack := dialRawMQTT(t, urls[1], "q2roam")
	if !ack.SessionPresent {
		t.Fatal("the session was not resumed on n2")
	}
	switch p2 := again.expect().(type) {
	case *wire.Publish:
		// Its packet id may differ from n1's (the id follows the
		// delivery's sequence number, which the forwarded consume
		// numbers its own way): a duplicate to the client, not a loss.
		if string(p2.Payload) != "exactly-once" || !p2.Dup {
			t.Fatalf("want the PUBLISH again with DUP, got %+v", p2)
		}
		again.send(&wire.Ack{Kind: wire.PUBREC, PacketID: p2.PacketID})
		if a, ok := again.expect().(*wire.Ack); !ok || a.Kind != wire.PUBREL {
			t.Fatalf("want PUBREL, got %+v", a)
		}
		again.send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: p2.PacketID})
	case *wire.Ack:
		if p2.Kind != wire.PUBREL {
			t.Fatalf("want the PUBLISH or its PUBREL, got %+v", p2)
		}
		// A node that knew of the PUBREC would send the PUBREL: also
		// not lost.
	default:
		t.Fatalf("want the PUBLISH again, got %+v", p2)
	}
	q := nodes[0].queue(t, "mqtt-subscription-q2roam")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, unacked, _ := q.Counts()
		if ready == 0 && unacked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session queue still holds the message after PUBCOMP: ready %d, unacked %d", ready, unacked)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
