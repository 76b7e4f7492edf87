package mqtt_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// expectAcks reads the next packets and checks their kinds and ids.
func expectAcks(t *testing.T, r *testkit.RawMQTT, want ...string) {
	t.Helper()
	for _, w := range want {
		var got string
		switch p := r.Expect().(type) {
		case *wire.Ack:
			got = fmt.Sprintf("ack%d/%d", p.Kind, p.PacketID)
		case *wire.Suback:
			got = fmt.Sprintf("suback/%d", p.PacketID)
		case *wire.Pingresp:
			got = "pingresp"
		default:
			got = fmt.Sprintf("%T", p)
		}
		if got != w {
			t.Fatalf("got %s, want %s", got, w)
		}
	}
}

func pubAck(pid uint16) string { return fmt.Sprintf("ack%d/%d", wire.PUBACK, pid) }

// expectTopics reads PUBLISHes (acknowledging them) and checks their
// topics, in order.
func expectTopics(t *testing.T, r *testkit.RawMQTT, topics ...string) {
	t.Helper()
	for _, want := range topics {
		if p := expectPublish(t, r); p.Topic != want {
			t.Fatalf("got a PUBLISH on %q, want %q", p.Topic, want)
		}
	}
}

// The event loop serves a connected client's PUBLISHes, PUBACKs and
// PINGREQs itself and hands any other packet, and everything after it, to
// a runner (inline.go): packets sent in one write — some the loop serves,
// some it cannot — and a packet split over two writes are all handled, in
// the order they came.
func TestMQTTPacketsTheEventLoopHandsOverKeepTheirOrder(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub, _ := connect5(t, s, "loop-sub", nil)
	subscribe5(t, sub, "loop/#", 1, false)
	pub, _ := connect5(t, s, "loop-pub", nil)
	var b []byte
	for _, p := range []wire.Packet{
		&wire.Publish{Topic: "loop/1", Payload: []byte("a")},
		&wire.Publish{QoS: 1, PacketID: 1, Topic: "loop/2", Payload: []byte("b")},
		&wire.Subscribe{PacketID: 2, Subs: []wire.Subscription{{Filter: "elsewhere/x", QoS: 1}}}, // a runner's
		&wire.Publish{QoS: 1, PacketID: 3, Topic: "loop/3", Payload: []byte("c")},
		&wire.Pingreq{},
		&wire.Publish{Retain: true, Topic: "loop/4", Payload: []byte("d")}, // a runner's: the retained store
		&wire.Publish{QoS: 1, PacketID: 5, Topic: "loop/5", Payload: []byte("e")},
	} {
		b = p.Append(b, wire.V5)
	}
	split := (&wire.Publish{QoS: 1, PacketID: 6, Topic: "loop/6", Payload: []byte("f")}).Append(nil, wire.V5)
	b = append(b, split[:3]...)
	if _, err := pub.NC.Write(b); err != nil {
		t.Fatal(err)
	}
	expectAcks(t, pub, pubAck(1), "suback/2", pubAck(3), "pingresp", pubAck(5))
	expectTopics(t, sub, "loop/1", "loop/2", "loop/3", "loop/4", "loop/5")
	if _, err := pub.NC.Write(split[3:]); err != nil {
		t.Fatal(err)
	}
	expectAcks(t, pub, pubAck(6))
	expectTopics(t, sub, "loop/6")
	// The connection parked again after the runner and is still served.
	pub.Send(&wire.Publish{QoS: 1, PacketID: 7, Topic: "loop/7", Payload: []byte("g")})
	expectAcks(t, pub, pubAck(7))
	expectTopics(t, sub, "loop/7")
}

// A publisher whose read fills the loop's buffer is streaming: a runner
// serves it, lingering, and once its stream thins it parks and the loop
// serves it again (its socket re-registered). Every message arrives, in
// order, before and after.
func TestMQTTStreamingPublisherGoesToARunnerAndBack(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub, _ := connect5(t, s, "stream-sub", nil)
	subscribe5(t, sub, "stream/#", 0, false)
	pub, _ := connect5(t, s, "stream-pub", nil)
	const n = 100 // 100 × ~220 bytes: more than the loop's 4 KiB buffer
	payload := bytes.Repeat([]byte("x"), 200)
	var b []byte
	for i := range n {
		b = (&wire.Publish{Topic: fmt.Sprint("stream/", i), Payload: payload}).Append(b, wire.V5)
	}
	if _, err := pub.NC.Write(b); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		expectTopics(t, sub, fmt.Sprint("stream/", i))
	}
	for i := range 3 {
		pub.Send(&wire.Publish{QoS: 1, PacketID: uint16(i + 1), Topic: fmt.Sprint("stream/after", i), Payload: []byte("y")})
		expectAcks(t, pub, pubAck(uint16(i+1)))
		expectTopics(t, sub, fmt.Sprint("stream/after", i))
	}
}
