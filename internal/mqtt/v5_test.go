package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

type v5inbox struct {
	mu   sync.Mutex
	msgs []*paho.Publish
	ch   chan struct{}
}

func (b *v5inbox) wait(t *testing.T, n int) []*paho.Publish {
	t.Helper()
	deadline := time.After(wait)
	for {
		b.mu.Lock()
		if len(b.msgs) >= n {
			out := slices.Clone(b.msgs)
			b.mu.Unlock()
			return out
		}
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(b.msgs), n)
		}
	}
}

func (b *v5inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

// client5 connects a Paho MQTT 5 client; its messages land in the inbox.
func client5(t *testing.T, s *testkit.Server, id string, props *paho.ConnectProperties) (*paho.Client, *v5inbox, *paho.Connack) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	in := &v5inbox{ch: make(chan struct{}, 1000)}
	c := paho.NewClient(paho.ClientConfig{Conn: nc, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(r paho.PublishReceived) (bool, error) {
			in.mu.Lock()
			in.msgs = append(in.msgs, r.Packet)
			in.mu.Unlock()
			in.ch <- struct{}{}
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{KeepAlive: 30, ClientID: id, CleanStart: true, Properties: props})
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	if ca.ReasonCode != 0 {
		t.Fatalf("connack 0x%02x", ca.ReasonCode)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c, in, ca
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func sub5(t *testing.T, c *paho.Client, subID int, opts ...paho.SubscribeOptions) {
	t.Helper()
	s := &paho.Subscribe{Subscriptions: opts}
	if subID > 0 {
		s.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: &subID}
	}
	sa, err := c.Subscribe(ctx5(t), s)
	if err != nil {
		t.Fatal(err)
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 {
			t.Fatalf("subscription %d refused: 0x%02x", i, rc)
		}
	}
}

func TestMQTT5PropertiesCrossTheBroker(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub, in, _ := client5(t, s, "sub", nil)
	sub5(t, sub, 42, paho.SubscribeOptions{Topic: "req/#", QoS: 1})
	pub, _, _ := client5(t, s, "pub", nil)
	expiry := uint32(60)
	_, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "req/time", QoS: 1, Payload: []byte("{}"), Properties: &paho.PublishProperties{
		ContentType: "application/json", ResponseTopic: "resp/pub", CorrelationData: []byte("corr-1"), MessageExpiry: &expiry,
		User: paho.UserProperties{{Key: "tenant", Value: "acme"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m := in.wait(t, 1)[0]
	p := m.Properties
	if p.ContentType != "application/json" || p.ResponseTopic != "resp/pub" || string(p.CorrelationData) != "corr-1" ||
		p.User.Get("tenant") != "acme" || p.MessageExpiry == nil || *p.MessageExpiry > 60 {
		t.Fatalf("properties lost: %+v", p)
	}
	if p.SubscriptionIdentifier == nil || *p.SubscriptionIdentifier != 42 {
		t.Fatalf("subscription identifier %v", p.SubscriptionIdentifier)
	}
}

func TestMQTT5ReasonCodesOnAcks(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	pub, _, _ := client5(t, s, "pub", nil)
	res, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "nobody/listens", QoS: 1, Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if res.ReasonCode != 0x10 {
		t.Fatalf("PUBACK reason 0x%02x, want 0x10 no matching subscribers", res.ReasonCode)
	}
	if res.Properties != nil && res.Properties.ReasonString != "" {
		t.Fatalf("a success-class PUBACK carries a reason string: %q", res.Properties.ReasonString)
	}
	// Paho reports the refused filter as an error, with the SUBACK.
	sa, err := pub.Subscribe(ctx5(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "a/#/b", QoS: 1}, {Topic: "ok/+", QoS: 2}}})
	if sa == nil {
		t.Fatal(err)
	}
	if !slices.Equal(sa.Reasons, []byte{0x8F, 0x02}) {
		t.Fatalf("SUBACK reasons %x", sa.Reasons)
	}
	ua, err := pub.Unsubscribe(ctx5(t), &paho.Unsubscribe{Topics: []string{"ok/+", "never"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ua.Reasons, []byte{0x00, 0x11}) {
		t.Fatalf("UNSUBACK reasons %x", ua.Reasons)
	}
}

func TestMQTT5NoLocalAndRetainOptions(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, in, _ := client5(t, s, "self", nil)
	sub5(t, c, 0, paho.SubscribeOptions{Topic: "chat/#", QoS: 1, NoLocal: true})
	other, _, _ := client5(t, s, "other", nil)
	if _, err := c.Publish(ctx5(t), &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Publish(ctx5(t), &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("theirs")}); err != nil {
		t.Fatal(err)
	}
	// A marker from the other client, published after both: "mine" was
	// routed before it, so it would arrive before the marker.
	if _, err := other.Publish(ctx5(t), &paho.Publish{Topic: "chat/room", QoS: 1, Payload: []byte("marker")}); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, 2)
	if string(got[0].Payload) != "theirs" || string(got[1].Payload) != "marker" {
		t.Fatalf("no-local: got %d messages, first %q", len(got), got[0].Payload)
	}

	// Retain handling 2: no retained messages on subscribe; retain-as-published keeps the flag.
	if _, err := other.Publish(ctx5(t), &paho.Publish{Topic: "cfg/x", QoS: 1, Retain: true, Payload: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	r2, in2, _ := client5(t, s, "r2", nil)
	sub5(t, r2, 0, paho.SubscribeOptions{Topic: "cfg/#", QoS: 1, RetainHandling: 2, RetainAsPublished: true})
	if _, err := other.Publish(ctx5(t), &paho.Publish{Topic: "cfg/x", QoS: 1, Retain: true, Payload: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	// Retained messages go right after the SUBACK, so v1 would arrive
	// before v2.
	if m := in2.wait(t, 1)[0]; string(m.Payload) != "v2" {
		t.Fatal("retain handling 2 sent a retained message")
	} else if !m.Retain {
		t.Fatal("retain-as-published lost the retain flag")
	}
}

func TestMQTT5SharedSubscriptionsRoundRobin(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	w1, in1, _ := client5(t, s, "w1", nil)
	w2, in2, _ := client5(t, s, "w2", nil)
	sub5(t, w1, 0, paho.SubscribeOptions{Topic: "$share/workers/jobs/#", QoS: 1})
	sub5(t, w2, 0, paho.SubscribeOptions{Topic: "$share/workers/jobs/#", QoS: 1})
	pub, _, _ := client5(t, s, "pub", nil)
	for i := 0; i < 10; i++ {
		if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "jobs/x", QoS: 1, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, wait, "all jobs delivered", func() bool { return in1.count()+in2.count() == 10 })
	if in1.count() != 5 || in2.count() != 5 {
		t.Fatalf("shared subscription split %d/%d, want 5/5", in1.count(), in2.count())
	}
}

func TestMQTT5TopicAliases(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub, in, _ := client5(t, s, "sub", nil)
	sub5(t, sub, 0, paho.SubscribeOptions{Topic: "long/topic/name", QoS: 1})
	pub, _, ca := client5(t, s, "pub", nil)
	if ca.Properties == nil || ca.Properties.TopicAliasMaximum == nil || *ca.Properties.TopicAliasMaximum == 0 {
		t.Fatal("no topic alias maximum in CONNACK")
	}
	alias := uint16(3)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "long/topic/name", QoS: 1, Payload: []byte("1"), Properties: &paho.PublishProperties{TopicAlias: &alias}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "", QoS: 1, Payload: []byte("2"), Properties: &paho.PublishProperties{TopicAlias: &alias}}); err != nil {
		t.Fatal(err)
	}
	got := in.wait(t, 2)
	if got[1].Topic != "long/topic/name" || string(got[1].Payload) != "2" {
		t.Fatalf("aliased publish arrived as %q %q", got[1].Topic, got[1].Payload)
	}
}

func TestMQTT5ReceiveMaximumBoundsInFlight(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	rm := uint16(2)
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.MQTTURL, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	in := &v5inbox{ch: make(chan struct{}, 100)}
	c := paho.NewClient(paho.ClientConfig{Conn: nc, EnableManualAcknowledgment: true,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(r paho.PublishReceived) (bool, error) {
			in.mu.Lock()
			in.msgs = append(in.msgs, r.Packet)
			in.mu.Unlock()
			in.ch <- struct{}{}
			return true, nil
		}}})
	if _, err := c.Connect(ctx5(t), &paho.Connect{ClientID: "slow", CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{ReceiveMaximum: &rm}}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	sub5(t, c, 0, paho.SubscribeOptions{Topic: "work", QoS: 1})
	pub, _, _ := client5(t, s, "pub", nil)
	for i := 0; i < 5; i++ {
		if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "work", QoS: 1, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	in.wait(t, 2)
	// Every publish was routed (PUBACKed) before this SUBSCRIBE: a third
	// delivery would be ahead of the SUBACK on the same connection.
	sub5(t, c, 0, paho.SubscribeOptions{Topic: "barrier", QoS: 0})
	if n := in.count(); n != 2 {
		t.Fatalf("%d unacknowledged deliveries with receive maximum 2", n)
	}
	if err := c.Ack(in.msgs[0]); err != nil {
		t.Fatal(err)
	}
	in.wait(t, 3)
}

func paho5Sub(topic string, qos byte) paho.SubscribeOptions {
	return paho.SubscribeOptions{Topic: topic, QoS: qos}
}

func TestMQTT5TakeoverDisconnectsWithReason(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := testkit.DialMQTT(t, s)
	r.V = 5
	r.Send(&wire.Connect{ProtocolName: "MQTT", Level: 5, CleanStart: true, KeepAlive: 30, ClientID: "dup"})
	r.Expect()
	client5(t, s, "dup", nil)
	if d, ok := r.Expect().(*wire.Disconnect); !ok || d.ReasonCode != wire.SessionTakenOver {
		t.Fatalf("want DISCONNECT 0x8E, got %+v", d)
	}
}

func TestMQTT5WillDelayCancelledByReconnect(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	watcher, in, _ := client5(t, s, "watcher", nil)
	sub5(t, watcher, 0, paho.SubscribeOptions{Topic: "lwt/#", QoS: 1})
	connectWithWill := func() *testkit.RawMQTT {
		r := testkit.DialMQTT(t, s)
		r.V = 5
		c := &wire.Connect{ProtocolName: "MQTT", Level: 5, KeepAlive: 30, ClientID: "flaky", Will: true, WillQoS: 1,
			WillTopic: "lwt/flaky", WillPayload: []byte("offline")}
		c.Props.SessionExpiry = 60
		c.Props.Set(wire.PropSessionExpiry)
		c.WillProps.WillDelay = 1
		c.WillProps.Set(wire.PropWillDelay)
		r.Send(c)
		r.Expect()
		return r
	}
	r := connectWithWill()
	_ = r.NC.Close()
	r = connectWithWill() // back within the delay: no will
	// By its CONNACK the resumed session has cancelled any will timer the
	// first connection armed; a will due now would be routed inside
	// Advance, before the marker published after it.
	clk.Advance(1500 * time.Millisecond)
	pub, _, _ := client5(t, s, "marker", nil)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "lwt/marker", QoS: 1, Payload: []byte("marker")}); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 1)[0]; m.Topic != "lwt/marker" {
		t.Fatalf("the will went out although the session resumed within its delay: got %q first", m.Topic)
	}
	_ = r.NC.Close()
	advanceUntil(t, clk, 100*time.Millisecond, "the will after its delay", func() bool { return in.count() == 2 })
	m := in.wait(t, 2)[1]
	if m.Topic != "lwt/flaky" || string(m.Payload) != "offline" {
		t.Fatalf("will %q %q", m.Topic, m.Payload)
	}
}

func TestMQTT5SessionExpiry(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	exp := uint32(1)
	c, _, _ := client5(t, s, "brief", &paho.ConnectProperties{SessionExpiryInterval: &exp})
	sub5(t, c, 0, paho.SubscribeOptions{Topic: "x", QoS: 1})
	_ = c.Disconnect(&paho.Disconnect{})
	_, ch := s.Channel(t)
	advanceUntil(t, clk, 250*time.Millisecond, "session queue expired", func() bool {
		_, err := ch.QueueDeclarePassive("mqtt-subscription-brief", true, false, false, false, nil)
		if err != nil {
			_, ch = s.Channel(t)
		}
		return err != nil
	})
}

func TestMQTT5MaximumPacketSizeOfTheClient(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	max := uint32(128)
	sub, in, _ := client5(t, s, "tiny", &paho.ConnectProperties{MaximumPacketSize: &max})
	sub5(t, sub, 0, paho.SubscribeOptions{Topic: "blob", QoS: 1})
	pub, _, _ := client5(t, s, "pub", nil)
	for _, size := range []int{500, 10} {
		if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "blob", QoS: 1, Payload: make([]byte, size)}); err != nil {
			t.Fatal(err)
		}
	}
	got := in.wait(t, 1) // the 500-byte one, published first, would arrive first
	if len(got[0].Payload) != 10 {
		t.Fatalf("a packet larger than the client's maximum was sent (%d messages, first %d bytes)", in.count(), len(got[0].Payload))
	}
}

func TestMQTT5MessageExpiryWhileOffline(t *testing.T) {
	t.Parallel()
	s, clk := startFake(t)
	connect := func(clean bool) *testkit.RawMQTT {
		r := testkit.DialMQTT(t, s)
		r.V = 5
		c := &wire.Connect{ProtocolName: "MQTT", Level: 5, CleanStart: clean, KeepAlive: 30, ClientID: "offline-dev"}
		c.Props.SessionExpiry = 300
		c.Props.Set(wire.PropSessionExpiry)
		r.Send(c)
		r.Expect()
		return r
	}
	r := connect(true)
	r.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "alerts/#", QoS: 1}}})
	r.Expect()
	r.Send(&wire.Disconnect{})
	_ = r.NC.Close()

	pub, _, _ := client5(t, s, "pub", nil)
	short, long := uint32(1), uint32(300)
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "alerts/stale", QoS: 1, Payload: []byte("stale"), Properties: &paho.PublishProperties{MessageExpiry: &short}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx5(t), &paho.Publish{Topic: "alerts/fresh", QoS: 1, Payload: []byte("fresh"), Properties: &paho.PublishProperties{MessageExpiry: &long}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1500 * time.Millisecond)
	r = connect(false)
	p, ok := r.Expect().(*wire.Publish)
	if !ok || string(p.Payload) != "fresh" {
		t.Fatalf("after reconnecting: %+v (the expired message must be gone)", p)
	}
	if !p.Props.Has(wire.PropMessageExpiry) || p.Props.MessageExpiry > 299 {
		t.Fatalf("message expiry %d: want what is left of 300", p.Props.MessageExpiry)
	}
}
