package amqp_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

func TestProtocolHeaderMismatchGetsCorrectHeader(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Write([]byte("AMQP\x01\x01\x00\x0a"))
	got, err := io.ReadAll(r.NC)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, amqp091.ProtocolHeader[:]) {
		t.Fatalf("got %q, want the AMQP 0-9-1 header then close", got)
	}
}

func TestLoginWithPlainAndAMQPLAIN(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, auth := range []amqp.Authentication{&amqp.PlainAuth{Username: "guest", Password: "guest"}, &amqp.AMQPlainAuth{Username: "guest", Password: "guest"}} {
		c, err := amqp.DialConfig(strings.Replace(s.URL, "guest:guest@", "", 1), amqp.Config{SASL: []amqp.Authentication{auth}})
		if err != nil {
			t.Fatalf("%s: %v", auth.Mechanism(), err)
		}
		_ = c.Close()
	}
}

func TestBadCredentialsRefused403(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, err := amqp.Dial(strings.Replace(s.URL, "guest:guest", "guest:wrong", 1))
	expectCode(t, err, amqp.AccessRefused)
}

func TestConfiguredUsersAndVHostAccess(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) {
		c.VHosts = []string{"staging"}
		c.Users = []config.User{{Name: "app", Password: "pw", VHosts: []string{"staging"}}}
	})
	base := strings.Replace(s.URL, "guest:guest", "app:pw", 1)
	c, err := amqp.Dial(base + "staging")
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	_, err = amqp.Dial(base) // vhost "/" not granted
	expectCode(t, err, amqp.NotAllowed)
	_, err = amqp.Dial(base + "nope")
	expectCode(t, err, amqp.NotAllowed)
	_, err = amqp.Dial(s.URL) // guest is gone once users are configured
	expectCode(t, err, amqp.AccessRefused)
}

func TestFrameMaxNegotiationSplitsLargeBodies(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, err := amqp.DialConfig(s.URL, amqp.Config{FrameSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, _ := c.Channel()
	q := declare(t, ch, nil)
	big := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB over 4 kB frames
	publish(t, ch, "", q, amqp.Publishing{Body: big})
	d := testkit.Receive(t, consume(t, ch, q, true), wait)
	if !bytes.Equal(d.Body, big) {
		t.Fatalf("body of %d bytes came back as %d", len(big), len(d.Body))
	}
}

func TestFrameLargerThanFrameMaxClosesConnection501(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	frame := []byte{amqp091.FrameBody, 0, 1, 0x00, 0x10, 0x00, 0x00} // 1 MiB, over 128 KiB
	r.Write(frame)
	cl, ok := r.Expect().(*amqp091.ConnectionClose)
	if !ok || cl.ReplyCode != amqp091.FrameError {
		t.Fatalf("want connection.close 501, got %+v", cl)
	}
}

func TestChannelMaxNegotiation(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, err := amqp.DialConfig(s.URL, amqp.Config{ChannelMax: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 2; i++ {
		if _, err := c.Channel(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Channel(); err == nil {
		t.Fatal("a third channel opened with channel-max 2")
	}
}

func TestHeartbeatDetectsSilentPeer(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(1) // 1 s heartbeat; we then say nothing
	start := time.Now()
	_ = r.NC.SetReadDeadline(time.Now().Add(6 * time.Second))
	for {
		if _, err := r.FR.ReadFrame(); err != nil {
			break // the server dropped us
		}
	}
	if el := time.Since(start); el < 1500*time.Millisecond || el > 5*time.Second {
		t.Fatalf("silent peer dropped after %v, want about 2 heartbeat intervals", el)
	}
	testkit.Eventually(t, wait, "connection count back to 0", func() bool { return s.AMQPStats().ConnectionsOpen == 0 })
}

func TestHeartbeatsKeepIdleConnectionAlive(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	// Real sockets and real heartbeats: under the race detector on a
	// loaded machine a 1 s heartbeat can be starved past two intervals, so
	// the intervals are longer there.
	hb := time.Second
	if raceEnabled {
		hb = 3 * time.Second
	}
	c, err := amqp.DialConfig(s.URL, amqp.Config{Heartbeat: hb})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(hb * 7 / 2) // three and a half intervals of silence from the application
	if c.IsClosed() {
		t.Fatal("idle connection with heartbeats was closed")
	}
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
}

func TestMissingQueueClosesChannelOnly404(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	_, err := ch.QueueDeclarePassive("missing", false, false, false, false, nil)
	ae := expectCode(t, err, amqp.NotFound)
	if ae.Reason != "NOT_FOUND - no queue 'missing' in vhost '/'" {
		t.Errorf("reason %q", ae.Reason)
	}
	if c.IsClosed() {
		t.Fatal("a 404 closed the connection")
	}
	if _, err := c.Channel(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownExchangeTypeClosesConnection503(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c, ch := s.Channel(t)
	err := ch.ExchangeDeclare("x", "no-such-type", false, false, false, false, nil)
	expectCode(t, err, amqp.CommandInvalid)
	testkit.Eventually(t, wait, "connection closed", c.IsClosed)
}

func TestUnexpectedFrameClosesConnection505(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	// A content header with no basic.publish before it.
	r.Write(amqp091.AppendHeaderFrame(nil, 1, amqp091.ClassBasic, 3, []byte{0, 0}))
	cl, ok := r.Expect().(*amqp091.ConnectionClose)
	if !ok || cl.ReplyCode != amqp091.UnexpectedFrame {
		t.Fatalf("want connection.close 505, got %+v", cl)
	}
}

func TestMalformedMethodClosesConnection502(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	// queue.declare whose queue name claims 200 bytes but has 2.
	payload := []byte{0, 50, 0, 10, 0, 0, 200, 'q', 'q'}
	frame := append([]byte{amqp091.FrameMethod, 0, 1, 0, 0, 0, byte(len(payload))}, payload...)
	r.Write(append(frame, amqp091.FrameEnd))
	cl, ok := r.Expect().(*amqp091.ConnectionClose)
	if !ok || cl.ReplyCode != amqp091.SyntaxError {
		t.Fatalf("want connection.close 502, got %+v", cl)
	}
}

func TestHostileInputDoesNotDisturbOtherConnections(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	d := consume(t, ch, q, true)
	for i := 0; i < 20; i++ {
		r := s.DialRaw(t)
		r.Handshake(0)
		r.Write(bytes.Repeat([]byte{0xCE, 1, 0, 1, 0xff}, 100))
		_ = r.NC.Close()
		publish(t, ch, "", q, body("still here"))
		if got := string(testkit.Receive(t, d, wait).Body); got != "still here" {
			t.Fatal(got)
		}
	}
}

func TestMetricsAndHealthEndpoints(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	_, ch := s.Channel(t)
	q := declare(t, ch, nil)
	publish(t, ch, "", q, body("m"))
	testkit.Eventually(t, wait, "message queued", func() bool { return queueLen(t, ch, q) == 1 })
	resp, err := http.Get(s.HTTPURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tern_connections 1", "tern_channels 1", "tern_messages_published_total 1", `tern_queue_messages_ready{queue="` + q + `",vhost="/"} 1`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err = http.Get(s.HTTPURL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestShutdownClosesClientsWithConnectionForced(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c := s.Dial(t)
	closed := c.NotifyClose(make(chan *amqp.Error, 1))
	// Closing every connection is what Run does when its context ends; the
	// testkit cleanup cancels it, so trigger the same path directly.
	go func() { time.Sleep(50 * time.Millisecond); s.Shutdown() }()
	select {
	case err := <-closed:
		if err == nil || err.Code != amqp.ConnectionForced {
			t.Fatalf("got %v, want 320 CONNECTION_FORCED", err)
		}
	case <-time.After(wait):
		t.Fatal("connection not closed on shutdown")
	}
}

func TestMethodOnUnopenedChannelClosesConnection504(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := s.DialRaw(t)
	r.Handshake(0)
	r.Send(7, &amqp091.QueueDeclare{Queue: "q"}) // channel 7 was never opened
	cl, ok := r.Expect().(*amqp091.ConnectionClose)
	if !ok || cl.ReplyCode != amqp091.ChannelError {
		t.Fatalf("want connection.close 504, got %+v", cl)
	}
	r2 := s.DialRaw(t)
	r2.Handshake(0)
	r2.Send(1, &amqp091.ChannelOpen{}) // a second channel.open on channel 1
	cl, ok = r2.Expect().(*amqp091.ConnectionClose)
	if !ok || cl.ReplyCode != amqp091.ChannelError {
		t.Fatalf("want connection.close 504 for a second channel.open, got %+v", cl)
	}
}
