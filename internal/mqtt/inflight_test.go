package mqtt_test

import (
	"fmt"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

var versions = []struct {
	name string
	v    byte
}{{"3.1.1", wire.V311}, {"5.0", wire.V5}}

// resume connects a raw client of protocol v to a persistent session
// (3.1.1: clean session off; 5.0: no Clean Start, an hour's expiry) and
// returns it with the CONNACK's Session Present.
func resume(t *testing.T, s *testkit.Server, v byte, id string) (*testkit.RawMQTT, bool) {
	t.Helper()
	r := testkit.DialMQTT(t, s)
	r.V = v
	c := &wire.Connect{ProtocolName: "MQTT", Level: v, KeepAlive: 60, ClientID: id}
	if v == wire.V5 {
		withExpiry(3600)(c)
	}
	r.Send(c)
	ack, ok := r.Expect().(*wire.Connack)
	if !ok || ack.ReasonCode != wire.Success {
		t.Fatalf("CONNACK %+v", ack)
	}
	return r, ack.SessionPresent
}

func expectPub(t *testing.T, r *testkit.RawMQTT) *wire.Publish {
	t.Helper()
	p, ok := r.Expect().(*wire.Publish)
	if !ok {
		t.Fatalf("want PUBLISH, got %T %+v", p, p)
	}
	return p
}

func expectAck(t *testing.T, r *testkit.RawMQTT, kind byte, pid uint16) {
	t.Helper()
	a, ok := r.Expect().(*wire.Ack)
	if !ok || a.Kind != kind || a.PacketID != pid {
		t.Fatalf("want ack kind %d for packet id %d, got %+v", kind, pid, a)
	}
}

// expectQuiet checks that nothing but the PINGRESP comes: a resumed
// session's resends go first, before the answer to a PINGREQ sent after
// CONNACK.
func expectQuiet(t *testing.T, r *testkit.RawMQTT) {
	t.Helper()
	r.Send(&wire.Pingreq{})
	if p, ok := r.Expect().(*wire.Pingresp); !ok {
		t.Fatalf("want PINGRESP (nothing resent), got %T %+v", p, p)
	}
}

// A session resumed after its connection dropped (or after a restart of
// the broker) resends its unacknowledged QoS 1 and 2 PUBLISHes with their
// original packet ids and DUP set, and PUBREL (not the PUBLISH) for the
// QoS 2 message whose PUBREC came, before anything else [MQTT-4.4.0-1];
// once completed, nothing comes again.
func TestMQTTResumedSessionResendsInflightWithOriginalIDs(t *testing.T) {
	t.Parallel()
	for _, restart := range []bool{false, true} {
		for _, ver := range versions {
			// One server at a time: the package's other tests run beside.
			t.Run(fmt.Sprintf("%s/restart=%v", ver.name, restart), func(t *testing.T) {
				var opts []testkit.Option
				if restart {
					opts = append(opts, testkit.WithDataDir(t.TempDir()))
				}
				s := testkit.Start(t, opts...)
				id := fmt.Sprintf("inflight-%d-%v", ver.v, restart)
				topic := "inflight/" + id
				r, _ := resume(t, s, ver.v, id)
				subscribe5(t, r, topic+"/#", 2, false)

				pub := client3(t, s, id+"-pub")
				done(t, pub.Publish(topic+"/a", 1, false, "a"))
				done(t, pub.Publish(topic+"/b", 2, false, "b"))
				done(t, pub.Publish(topic+"/c", 2, false, "c"))
				pa, pb, pc := expectPub(t, r), expectPub(t, r), expectPub(t, r)
				if string(pa.Payload) != "a" || pa.QoS != 1 || string(pb.Payload) != "b" || pb.QoS != 2 || string(pc.Payload) != "c" || pc.QoS != 2 {
					t.Fatalf("first deliveries: %+v %+v %+v", pa, pb, pc)
				}
				if pa.Dup || pb.Dup || pc.Dup {
					t.Fatal("a first delivery has DUP set")
				}
				r.Send(&wire.Ack{Kind: wire.PUBREC, PacketID: pb.PacketID})
				expectAck(t, r, wire.PUBREL, pb.PacketID)
				_ = r.NC.Close() // a comes without PUBACK, b without PUBCOMP, c without PUBREC

				if restart {
					pub.Disconnect(50)
					s = s.Restart(t)
				}
				r2, present := resume(t, s, ver.v, id)
				if !present {
					t.Fatal("the session is not present")
				}
				// First: PUBREL for b (from its PUBREC record, right after
				// CONNACK), then a and c again in order (same ids, DUP).
				// MQTT orders PUBLISH resends among themselves and PUBRELs
				// among themselves [MQTT-4.6.0-1, -3], not one against the other.
				expectAck(t, r2, wire.PUBREL, pb.PacketID)
				a2 := expectPub(t, r2)
				if string(a2.Payload) != "a" || a2.PacketID != pa.PacketID || !a2.Dup || a2.QoS != 1 {
					t.Fatalf("a resent as %+v, first as id %d", a2, pa.PacketID)
				}
				c2 := expectPub(t, r2)
				if string(c2.Payload) != "c" || c2.PacketID != pc.PacketID || !c2.Dup || c2.QoS != 2 {
					t.Fatalf("c resent as %+v, first as id %d", c2, pc.PacketID)
				}
				r2.Send(&wire.Ack{Kind: wire.PUBACK, PacketID: pa.PacketID})
				r2.Send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: pb.PacketID})
				r2.Send(&wire.Ack{Kind: wire.PUBREC, PacketID: pc.PacketID})
				expectAck(t, r2, wire.PUBREL, pc.PacketID)
				r2.Send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: pc.PacketID})
				expectQuiet(t, r2)
				_ = r2.NC.Close()

				if restart {
					s = s.Restart(t)
				}
				r3, _ := resume(t, s, ver.v, id)
				expectQuiet(t, r3) // all three completed: nothing again
			})
		}
	}
}

// A QoS 2 PUBLISH the server answered with PUBREC is not routed again when
// the client, resuming its session, resends it with DUP before PUBREL —
// after a reconnect and after a restart of the broker. After a restart, an
// id the server recovered may have had a PUBREL whose record the crash
// lost, so a PUBLISH with it but without DUP is a new message and routed.
func TestMQTTInboundQoS2ResendNotRoutedTwiceAcrossSessions(t *testing.T) {
	t.Parallel()
	for _, restart := range []bool{false, true} {
		for _, ver := range versions {
			// One server at a time: the package's other tests run beside.
			t.Run(fmt.Sprintf("%s/restart=%v", ver.name, restart), func(t *testing.T) {
				var opts []testkit.Option
				if restart {
					opts = append(opts, testkit.WithDataDir(t.TempDir()))
				}
				s := testkit.Start(t, opts...)
				id := fmt.Sprintf("inbound-%d-%v", ver.v, restart)
				topic := "inbound/" + id

				listen := func(s *testkit.Server) *inbox {
					in := newInbox()
					sub := client3(t, s, id+"-sub")
					done(t, sub.Subscribe(topic, 2, in.handler))
					return in
				}
				in := listen(s)
				r, _ := resume(t, s, ver.v, id)
				r.Send(&wire.Publish{QoS: 2, PacketID: 7, Topic: topic, Payload: []byte("x")})
				expectAck(t, r, wire.PUBREC, 7)
				r.Send(&wire.Publish{QoS: 2, PacketID: 9, Topic: topic, Payload: []byte("z")})
				expectAck(t, r, wire.PUBREC, 9)
				if got := in.wait(t, 2); string(got[0].Payload()) != "x" || string(got[1].Payload()) != "z" {
					t.Fatalf("got %q, %q", got[0].Payload(), got[1].Payload())
				}
				_ = r.NC.Close() // no PUBREL for 7 nor 9

				if restart {
					s = s.Restart(t)
					in = listen(s)
				} else {
					in = listen(s) // takes the subscriber's client id over: a fresh inbox
				}
				r2, present := resume(t, s, ver.v, id)
				if !present {
					t.Fatal("the session is not present")
				}
				r2.Send(&wire.Publish{QoS: 2, PacketID: 7, Dup: true, Topic: topic, Payload: []byte("x")})
				expectAck(t, r2, wire.PUBREC, 7)
				r2.Send(&wire.Ack{Kind: wire.PUBREL, PacketID: 7})
				comp, ok := r2.Expect().(*wire.Ack)
				if !ok || comp.Kind != wire.PUBCOMP || comp.PacketID != 7 || comp.ReasonCode != wire.Success {
					t.Fatalf("want PUBCOMP success for 7, got %+v", comp)
				}
				r2.Send(&wire.Publish{QoS: 2, PacketID: 7, Topic: topic, Payload: []byte("y")})
				expectAck(t, r2, wire.PUBREC, 7)
				r2.Send(&wire.Ack{Kind: wire.PUBREL, PacketID: 7})
				expectAck(t, r2, wire.PUBCOMP, 7)
				want := []string{"y"}
				if restart {
					// 9 recovered: only a DUP PUBLISH would be its resend.
					r2.Send(&wire.Publish{QoS: 2, PacketID: 9, Topic: topic, Payload: []byte("w")})
					expectAck(t, r2, wire.PUBREC, 9)
					want = append(want, "w")
				} else {
					r2.Send(&wire.Publish{QoS: 2, PacketID: 9, Dup: true, Topic: topic, Payload: []byte("z")})
					expectAck(t, r2, wire.PUBREC, 9)
				}
				r2.Send(&wire.Publish{QoS: 1, PacketID: 11, Topic: topic, Payload: []byte("end")})
				expectAck(t, r2, wire.PUBACK, 11)
				want = append(want, "end")
				got := in.wait(t, len(want))
				for i, w := range want {
					if string(got[i].Payload()) != w {
						t.Fatalf("message %d is %q, want %q (a resend routed again?)", i, got[i].Payload(), w)
					}
				}
			})
		}
	}
}

// A Paho 3.1.1 subscriber that did not acknowledge a QoS 1 message gets it
// again, with the same message id and DUP, when a new client resumes its
// session.
func TestMQTTPahoResumedSessionGetsTheSameMessageID(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	first := newInbox()
	sub := client3(t, s, "paho-resume", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetAutoAckDisabled(true)
	})
	done(t, sub.Subscribe("paho-resume/#", 1, first.handler))
	pub := client3(t, s, "paho-resume-pub")
	done(t, pub.Publish("paho-resume/x", 1, false, "once"))
	m := first.wait(t, 1)[0]
	sub.Disconnect(50) // without acknowledging m

	again := newInbox()
	client3(t, s, "paho-resume", func(o *paho.ClientOptions) {
		o.SetCleanSession(false).SetDefaultPublishHandler(again.handler)
	})
	m2 := again.wait(t, 1)[0]
	if string(m2.Payload()) != "once" || m2.MessageID() != m.MessageID() || !m2.Duplicate() {
		t.Fatalf("resent as id %d dup=%v %q; first id %d", m2.MessageID(), m2.Duplicate(), m2.Payload(), m.MessageID())
	}
}

// A 5.0 client resuming its session with Session Expiry 0 (the session
// now ends with this connection) still gets PUBREL for the QoS 2 message
// whose PUBREC came, not its PUBLISH again.
func TestMQTT5ResumedSessionWithExpiryZeroStillSendsPUBREL(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r, _ := resume(t, s, wire.V5, "expiry-zero")
	subscribe5(t, r, "expiry-zero/#", 2, false)
	pub := client3(t, s, "expiry-zero-pub")
	done(t, pub.Publish("expiry-zero/x", 2, false, "x"))
	p := expectPub(t, r)
	r.Send(&wire.Ack{Kind: wire.PUBREC, PacketID: p.PacketID})
	expectAck(t, r, wire.PUBREL, p.PacketID)
	_ = r.NC.Close()

	r2, _ := connect5(t, s, "expiry-zero", func(c *wire.Connect) { c.CleanStart = false })
	expectAck(t, r2, wire.PUBREL, p.PacketID)
	r2.Send(&wire.Ack{Kind: wire.PUBCOMP, PacketID: p.PacketID})
	expectQuiet(t, r2)
}
