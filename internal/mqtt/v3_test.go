package mqtt_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/testkit"
)

const wait = 5 * time.Second

// client3 connects a Paho 3.1.1 client.
func client3(t *testing.T, s *testkit.Server, id string, opts ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(s.MQTTURL).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	for _, f := range opts {
		f(o)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func done(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("token: %v", tok.Error())
	}
}

type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1000)} }

func (b *inbox) handler(_ paho.Client, m paho.Message) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	b.ch <- struct{}{}
}

func (b *inbox) wait(t *testing.T, n int) []paho.Message {
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

func TestMQTTPublishSubscribeAtEveryQoS(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub := client3(t, s, "sub")
	in := newInbox()
	done(t, sub.Subscribe("sensors/#", 2, in.handler))
	pub := client3(t, s, "pub")
	for qos := byte(0); qos <= 2; qos++ {
		done(t, pub.Publish(fmt.Sprintf("sensors/q%d", qos), qos, false, fmt.Sprintf("payload-%d", qos)))
	}
	got := in.wait(t, 3)
	for i, m := range got {
		if m.Topic() != fmt.Sprintf("sensors/q%d", i) || string(m.Payload()) != fmt.Sprintf("payload-%d", i) || m.Qos() != byte(i) {
			t.Errorf("message %d: %s %q qos %d", i, m.Topic(), m.Payload(), m.Qos())
		}
	}
}

func TestMQTTWildcardsAndDollarTopics(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	plus, hash, sys := newInbox(), newInbox(), newInbox()
	c := client3(t, s, "c")
	done(t, c.Subscribe("home/+/temp", 0, plus.handler))
	c2 := client3(t, s, "c2")
	done(t, c2.Subscribe("#", 0, hash.handler))
	c3 := client3(t, s, "c3")
	done(t, c3.Subscribe("$SYS/#", 0, sys.handler))
	pub := client3(t, s, "p")
	for _, topic := range []string{"home/kitchen/temp", "home/kitchen/humidity", "home/a/b/temp", "$SYS/uptime", "v1.2/x"} {
		done(t, pub.Publish(topic, 0, false, topic))
	}
	if got := topics(plus.wait(t, 1)); !slices.Equal(got, []string{"home/kitchen/temp"}) {
		t.Errorf("+ got %v", got)
	}
	want := []string{"home/kitchen/temp", "home/kitchen/humidity", "home/a/b/temp", "v1.2/x"}
	if got := topics(hash.wait(t, 4)); !slices.Equal(got, want) {
		t.Errorf("# got %v (a $-topic must not match #)", got)
	}
	if got := topics(sys.wait(t, 1)); !slices.Equal(got, []string{"$SYS/uptime"}) {
		t.Errorf("$SYS/# got %v", got)
	}
}

func topics(ms []paho.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Topic())
	}
	return out
}

func TestMQTTRetainedMessages(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	pub := client3(t, s, "pub")
	done(t, pub.Publish("status/door", 1, true, "open"))
	done(t, pub.Publish("status/window", 1, true, "closed"))
	in := newInbox()
	sub := client3(t, s, "sub")
	done(t, sub.Subscribe("status/+", 1, in.handler))
	got := in.wait(t, 2)
	for _, m := range got {
		if !m.Retained() {
			t.Errorf("%s delivered without the retain flag", m.Topic())
		}
	}
	done(t, pub.Publish("status/door", 1, true, "")) // an empty payload clears
	in2 := newInbox()
	sub2 := client3(t, s, "sub2")
	done(t, sub2.Subscribe("status/+", 1, in2.handler))
	// Retained messages go in topic order: a status/door left behind
	// would come first.
	if got := topics(in2.wait(t, 1)); !slices.Equal(got, []string{"status/window"}) {
		t.Errorf("after clearing: %v", got)
	}
}

func TestMQTTWillOnAbnormalDisconnectOnly(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	in := newInbox()
	watcher := client3(t, s, "watcher")
	done(t, watcher.Subscribe("wills/#", 1, in.handler))

	polite := client3(t, s, "polite", func(o *paho.ClientOptions) { o.SetWill("wills/polite", "gone", 1, false) })
	polite.Disconnect(100)
	// Its connection is counted closed after its teardown, where a will
	// would have been routed: before the crasher's, which must come first.
	testkit.Eventually(t, wait, "the polite client gone", func() bool { return s.MQTTStats().ConnectionsOpen == 1 })

	r := testkit.DialMQTT(t, s)
	r.Connect("crasher", "wills/crasher", "crashed")
	_ = r.NC.Close() // no DISCONNECT
	got := in.wait(t, 1)
	if got[0].Topic() != "wills/crasher" || string(got[0].Payload()) != "crashed" {
		t.Fatalf("will %s %q", got[0].Topic(), got[0].Payload())
	}
}

func TestMQTTClientIDTakeover(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	lost := make(chan error, 1)
	first := client3(t, s, "device-1", func(o *paho.ClientOptions) {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	})
	_ = first
	second := client3(t, s, "device-1")
	select {
	case <-lost:
	case <-time.After(wait):
		t.Fatal("the first connection was not disconnected by the takeover")
	}
	if !second.IsConnected() {
		t.Fatal("the second connection lost")
	}
}

func TestMQTTKeepAliveIsEnforced(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := testkit.DialMQTT(t, s)
	r.ConnectKeepAlive("sleepy", 1)
	start := time.Now()
	_ = r.NC.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	for {
		if _, err := r.NC.Read(buf); err != nil {
			break
		}
	}
	if el := time.Since(start); el < 1200*time.Millisecond || el > 3*time.Second {
		t.Fatalf("silent client dropped after %v, want 1.5 × keep-alive", el)
	}
}

func TestMQTTPersistentSessionKeepsMessagesWhileOffline(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	persistent := func(o *paho.ClientOptions) { o.SetCleanSession(false) }
	in := newInbox()
	dev := client3(t, s, "sleeper", persistent)
	done(t, dev.Subscribe("cmd/sleeper", 1, in.handler))
	dev.Disconnect(50)

	pub := client3(t, s, "ctl")
	for i := 0; i < 3; i++ {
		done(t, pub.Publish("cmd/sleeper", 1, false, fmt.Sprint("cmd-", i)))
	}
	in2 := newInbox()
	o := paho.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("sleeper").SetCleanSession(false).
		SetAutoReconnect(false).SetDefaultPublishHandler(in2.handler)
	dev2 := paho.NewClient(o)
	tok := dev2.Connect()
	done(t, tok)
	defer dev2.Disconnect(50)
	if !tok.(*paho.ConnectToken).SessionPresent() {
		t.Error("session present not set on resume")
	}
	got := in2.wait(t, 3)
	for i, m := range got {
		if string(m.Payload()) != fmt.Sprint("cmd-", i) {
			t.Errorf("message %d: %q", i, m.Payload())
		}
	}
}

func TestMQTTBadCredentialsRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	o := paho.NewClientOptions().AddBroker(s.MQTTURL).SetClientID("x").SetUsername("guest").SetPassword("wrong").
		SetAutoReconnect(false).SetProtocolVersion(4)
	c := paho.NewClient(o)
	tok := c.Connect()
	tok.WaitTimeout(wait)
	if tok.Error() == nil || !strings.Contains(tok.Error().Error(), "bad user name or password") {
		t.Fatalf("got %v", tok.Error())
	}
	// The right password works.
	client3(t, s, "y", func(o *paho.ClientOptions) { o.SetUsername("guest").SetPassword("guest") })
}
