package mqtt_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

func withMQTT(adjust func(*config.Config)) testkit.Option { return testkit.Option(adjust) }

func mqttAddr(s *testkit.Server) string { return strings.TrimPrefix(s.MQTTURL, "tcp://") }

// waitClosedBy reads nc until the broker closes it and returns how long
// that took from start; it fails on a packet or after limit.
func waitClosedBy(t *testing.T, nc net.Conn, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	_ = nc.SetReadDeadline(start.Add(limit))
	var b [64]byte
	n, err := nc.Read(b[:])
	if n > 0 {
		t.Fatalf("got %d bytes (% x) instead of a close", n, b[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("not closed within %v", limit)
	}
	if err != io.EOF && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	return time.Since(start)
}

// A client that connects and sends nothing is closed after the CONNECT
// timeout, parked meanwhile: no goroutine, no buffer.
func TestSilentConnectionClosedAfterConnectTimeoutHoldingNoBuffer(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withMQTT(func(c *config.Config) { c.MQTTConnectTimeout = 1 }))
	start := time.Now()
	nc, err := net.Dial("tcp", mqttAddr(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testkit.Eventually(t, 5*time.Second, "the silent connection parked", func() bool {
		st := s.MQTTStats()
		return st.ConnectionsOpen == 1 && st.ConnectionsParked == 1
	})
	if st := s.MQTTStats(); st.ReadBuffersInUse != 0 {
		t.Fatalf("a silent connection holds %d read buffers", st.ReadBuffersInUse)
	}
	took := waitClosedBy(t, nc, start, 10*time.Second)
	if took < 900*time.Millisecond {
		t.Fatalf("closed after %v, before the 1 s CONNECT timeout", took)
	}
	testkit.Eventually(t, 5*time.Second, "the connection gone", func() bool { return s.MQTTStats().ConnectionsOpen == 0 })
}

// A CONNECT trickling in a byte at a time is closed at the CONNECT timeout
// counted from the accept, not from its last byte; between bytes it holds
// no buffer.
func TestTricklingConnectClosedAtConnectTimeout(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withMQTT(func(c *config.Config) { c.MQTTConnectTimeout = 1 }))
	start := time.Now()
	nc, err := net.Dial("tcp", mqttAddr(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pkt := (&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: "slow-loris-with-a-long-name"}).Append(nil, wire.V311)
	closed := make(chan time.Duration, 1)
	go func() {
		var b [64]byte
		_ = nc.SetReadDeadline(start.Add(10 * time.Second))
		n, _ := nc.Read(b[:])
		if n > 0 {
			closed <- -1
			return
		}
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(pkt)-1; i++ {
		select {
		case took := <-closed:
			if took < 0 {
				t.Fatal("the broker answered an incomplete CONNECT")
			}
			if took < 900*time.Millisecond {
				t.Fatalf("closed after %v, before the CONNECT timeout", took)
			}
			t.Logf("closed after %v and %d of %d bytes", took, i, len(pkt))
			return
		case <-tick.C:
		}
		if _, err := nc.Write(pkt[i : i+1]); err != nil {
			break // closed meanwhile
		}
		if i == 3 {
			testkit.Eventually(t, 5*time.Second, "parked between bytes", func() bool { return s.MQTTStats().ConnectionsParked == 1 })
			if st := s.MQTTStats(); st.ReadBuffersInUse != 0 {
				t.Fatalf("a trickling connection holds %d read buffers between bytes", st.ReadBuffersInUse)
			}
		}
	}
	select {
	case took := <-closed:
		if took < 900*time.Millisecond || took > 5*time.Second {
			t.Fatalf("closed after %v, want about the 1 s CONNECT timeout", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("never closed")
	}
}

// A flood of connections from one address is cut at the per-address rate;
// another address still gets in. The overall rate makes accepts wait.
func TestConnectFloodFromOneAddressIsRateLimited(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withMQTT(func(c *config.Config) { c.MQTTConnectRatePerAddress = 5; c.MQTTConnectRate = 5 }))
	addr := mqttAddr(s)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range 30 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	testkit.Eventually(t, 10*time.Second, "the flood rate limited", func() bool { return s.MQTTStats().RateLimited >= 20 })
	// Another address is not affected.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, nc)
	c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: "other-address"}
	if _, err := nc.Write(c.Append(nil, wire.V311)); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [4]byte
	if _, err := io.ReadFull(nc, b[:]); err != nil || b[0] != wire.CONNACK<<4 {
		t.Fatalf("CONNACK from another address: %v % x", err, b)
	}
	// A storm from many addresses waits for the overall rate instead.
	for i := range 15 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(10+i))}}
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
	}
	testkit.Eventually(t, 10*time.Second, "accepts throttled", func() bool { return s.MQTTStats().AcceptThrottled > 0 })
	st := s.MQTTStats()
	t.Logf("rate limited %d, accepts throttled %d", st.RateLimited, st.AcceptThrottled)
}

// A packet larger than a pooled read buffer, arriving in pieces with the
// connection parked in between, is put together and delivered whole.
func TestLargePacketInPiecesAcrossParks(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	sub := testkit.DialMQTT(t, s)
	sub.Connect("large-sub", "", "")
	sub.Send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "big/#", QoS: 0}}})
	if _, ok := sub.Expect().(*wire.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	pub := testkit.DialMQTT(t, s)
	pub.Connect("large-pub", "", "")
	payload := make([]byte, 100_000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	raw := (&wire.Publish{Topic: "big/one", Payload: payload}).Append(nil, wire.V311)
	for i, piece := range [][]byte{raw[:3], raw[3:5000], raw[5000:60_000], raw[60_000:]} {
		if _, err := pub.NC.Write(piece); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			testkit.Eventually(t, 5*time.Second, "the publisher parked between pieces", func() bool { return s.MQTTStats().ConnectionsParked >= 2 })
		}
	}
	p, ok := sub.Expect().(*wire.Publish)
	if !ok || p.Topic != "big/one" || string(p.Payload) != string(payload) {
		t.Fatal("the large message did not arrive whole")
	}
	testkit.Eventually(t, 5*time.Second, "read buffers returned", func() bool { return s.MQTTStats().ReadBuffersInUse == 0 })
}
