package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mqtt"
)

// MQTT on an in-process cluster of real brokers, wired as internal/server
// wires them: client-id takeover across nodes, a session whose node is
// down, publishes matching such a session.

// serveMQTT serves MQTT on bn's broker (anonymous guest) until the test
// ends and returns its URL and server. cluster: false serves it as a
// single node would (no cross-node takeover), to show what the cluster
// wiring changes.
func (bn *brokerNode) serveMQTT(t testing.TB, cluster bool) (string, *mqtt.Server) {
	t.Helper()
	users := auth.NewStore()
	users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest")})
	users.SetPermission("guest", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := mqtt.Config{AllowAnonymous: true}
	if cluster {
		cfg.Cluster = bn.node
	}
	srv, err := mqtt.NewServer(cfg, bn.b, users, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cluster {
		bn.node.SetClientTakeover(srv.TakenOver)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "tcp://" + ln.Addr().String(), srv
}

// mqttClient is a Paho 3.1.1 client that records what it receives and
// whether it lost its connection.
type mqttClient struct {
	paho.Client
	mu   sync.Mutex
	got  []string
	lost atomic.Bool
	ch   chan struct{}
}

func dialMQTT(t *testing.T, url, id string, clean bool) *mqttClient {
	t.Helper()
	mc, err := connectMQTT(url, id, clean)
	if err != nil {
		t.Fatalf("connect %s to %s: %v", id, url, err)
	}
	t.Cleanup(func() { mc.Disconnect(0) })
	return mc
}

func connectMQTT(url, id string, clean bool) (*mqttClient, error) {
	mc := &mqttClient{ch: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(paho.Client, error) { mc.lost.Store(true); mc.poke() }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			mc.mu.Lock()
			mc.got = append(mc.got, string(m.Payload()))
			mc.mu.Unlock()
			mc.poke()
		})
	mc.Client = paho.NewClient(o)
	tok := mc.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("no CONNACK within 10 s")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	return mc, nil
}

func (mc *mqttClient) poke() {
	select {
	case mc.ch <- struct{}{}:
	default:
	}
}

func (mc *mqttClient) received() []string {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return slices.Clone(mc.got)
}

// waitFor waits, on the client's events, until cond holds or 10 s pass.
func (mc *mqttClient) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-mc.ch:
		case <-deadline:
			t.Fatalf("waiting for %s", what)
		}
	}
}

func mqttDo(t *testing.T, tok paho.Token) {
	t.Helper()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT: %v", tok.Error())
	}
}

// MQTT-3.1.4-2: a CONNECT with a client id connected on another node
// disconnects that connection; the session's messages all go to the new
// one. (Before the takeover was cluster-wide, both stayed connected and
// shared the session queue's messages between them.)
func TestMQTTClientIDTakeoverAcrossNodes(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, bn := range nodes {
		urls[i], _ = bn.serveMQTT(t, true)
	}
	a := dialMQTT(t, urls[0], "takeover-x", false)
	mqttDo(t, a.Subscribe("tk/#", 1, nil))
	b := dialMQTT(t, urls[1], "takeover-x", false)
	a.waitFor(t, "the first connection (n1) to be closed by the takeover on n2", a.lost.Load)

	pub := dialMQTT(t, urls[2], "tk-pub", true)
	for _, m := range []string{"t0", "t1", "t2", "t3", "t4"} {
		mqttDo(t, pub.Publish("tk/x", 1, false, m))
	}
	b.waitFor(t, "five messages on n2", func() bool { return len(b.received()) >= 5 })
	if got := b.received(); !slices.Equal(got, []string{"t0", "t1", "t2", "t3", "t4"}) {
		t.Fatalf("the new connection got %v", got)
	}
	if got := a.received(); len(got) != 0 {
		t.Fatalf("the taken-over connection got %v", got)
	}
	if b.lost.Load() || !b.IsConnectionOpen() {
		t.Fatal("the new connection was closed")
	}

	// And back: a clean session on n3 takes the id over from n2.
	c := dialMQTT(t, urls[2], "takeover-x", true)
	b.waitFor(t, "the n2 connection to be closed by a clean session on n3", b.lost.Load)
	if !c.IsConnectionOpen() {
		t.Fatal("the clean session's connection was closed")
	}
}

// A persistent session whose node (the one holding its queue) is down
// cannot be resumed on another node: the CONNECT is refused with Server
// unavailable (3.1.1 return code 3), rather than accepted with Session
// Present and dropped at once, and the client gets in again once the
// node is back. A clean session connects meanwhile.
func TestMQTTSessionOfADownNodeIsRefusedNotDropped(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	for i, bn := range nodes {
		urls[i], _ = bn.serveMQTT(t, true)
	}
	sub := dialMQTT(t, urls[0], "user7-sub", false)
	mqttDo(t, sub.Subscribe("sensors/#", 1, nil))
	sub.Disconnect(50)
	if err := nodes[0].node.Close(); err != nil {
		t.Fatal(err)
	}
	mc, err := connectMQTT(urls[1], "user7-sub", false)
	if err == nil {
		mc.Disconnect(0)
		t.Fatal("the session of a down node was resumed on n2")
	}
	if err.Error() != "server Unavailable" {
		t.Fatalf("CONNECT on n2: %v, want server unavailable (return code 3)", err)
	}
	fresh := dialMQTT(t, urls[1], "user7-fresh", true)
	mqttDo(t, fresh.Subscribe("other/#", 1, nil))

	nodes[0].restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		mc, err := connectMQTT(urls[1], "user7-sub", false)
		if err == nil {
			// The resumed session is served: a publish through n3 reaches
			// it through its subscription of before.
			pub := dialMQTT(t, urls[2], "user7-pub", true)
			mqttDo(t, pub.Publish("sensors/s1/temp", 1, false, "after"))
			mc.waitFor(t, "the resumed session's delivery", func() bool { return slices.Contains(mc.received(), "after") })
			if mc.lost.Load() {
				t.Fatal("the resumed session's connection was dropped")
			}
			mc.Disconnect(0)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("n1 is back, and the session still cannot be resumed on n2: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A QoS 1 publish whose topic matches a persistent session held by a down
// node: the copies for the live destinations are delivered (another
// node's MQTT subscriber, a queue bound to amq.topic), the publisher gets
// its PUBACK and keeps its connection, and the copy that could not reach
// the down node's queue is counted. (Before, a 3.1.1 publisher was
// disconnected about a second after each such publish, in a loop.)
func TestMQTTPublishMatchingADownNodesSession(t *testing.T) {
	nodes := startBrokerCluster(t, 3)
	urls := make([]string, len(nodes))
	srvs := make([]*mqtt.Server, len(nodes))
	for i, bn := range nodes {
		urls[i], srvs[i] = bn.serveMQTT(t, true)
	}
	sub := dialMQTT(t, urls[0], "user7-sub", false)
	mqttDo(t, sub.Subscribe("sensors/#", 1, nil))
	sub.Disconnect(50)
	live := dialMQTT(t, urls[2], "live-sub", true)
	mqttDo(t, live.Subscribe("sensors/#", 1, nil))
	vh := nodes[1].b.VHost("/")
	if _, err := vh.DeclareQueue(broker.QueueConfig{Name: "tap", Durable: true}, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := vh.BindQueue("tap", "amq.topic", "sensors.#", nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].node.Close(); err != nil {
		t.Fatal(err)
	}

	pub := dialMQTT(t, urls[1], "probe", true)
	const n = 20
	for i := range n {
		tok := pub.Publish("sensors/s1/temp", 1, false, fmt.Sprintf("probe%d", i))
		mqttDo(t, tok)
		if pub.lost.Load() {
			t.Fatalf("publish %d: the publisher was disconnected", i)
		}
	}
	live.waitFor(t, "the live subscriber's copies", func() bool { return len(live.received()) >= n })
	tap, err := vh.Queue("tap", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ready, _, _ := tap.Counts(); ready != n {
		t.Fatalf("the bound queue on n2 holds %d messages, want %d", ready, n)
	}
	if got := srvs[1].Stats().CopiesUnreachable; got < 1 {
		t.Fatalf("copies to the down node's session counted: %d", got)
	}
	if pub.lost.Load() || !pub.IsConnectionOpen() {
		t.Fatal("the publisher lost its connection")
	}
}
