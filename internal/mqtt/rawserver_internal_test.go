package mqtt

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// In-package tests that need the *Server itself (to call what the cluster
// calls, TakenOver, or to look at its state) serve it here on a broker of
// their own; testkit cannot be used in package mqtt (it imports the
// server, which imports this package).

// testServer is an MQTT server on a broker that tells time by clk.
type testServer struct {
	*Server
	b    *broker.Broker
	addr string
}

// serveTest serves MQTT (anonymous guest) on b until the test ends; dir
// "" keeps the session expiry file in memory.
func serveTest(t *testing.T, b *broker.Broker, dir string, cfg Config) *testServer {
	t.Helper()
	users := auth.NewStore()
	users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest")})
	users.SetPermission("guest", "/", auth.Permission{Configure: ".*", Write: ".*", Read: ".*"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowAnonymous, cfg.DataDir = true, dir
	srv, err := NewServer(cfg, b, users, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testServer{Server: srv, b: b, addr: ln.Addr().String()}
}

func newTestBroker(clk clock.Clock) *broker.Broker {
	return broker.New(broker.Config{Clock: clk})
}

// hasQueue reports whether the vhost has the session queue of clientID.
func (s *testServer) hasSession(clientID string) bool {
	_, err := s.b.VHost("/").Queue(sessionQueue(clientID), 0)
	return err == nil
}

// rawClient is a hand-driven MQTT connection.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	r  *wire.Reader
	v  byte
}

func dialRaw(t *testing.T, addr string, v byte) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, nc: nc, r: wire.NewReader(bufio.NewReader(nc), 0), v: v}
}

func (r *rawClient) send(p wire.Packet) {
	r.t.Helper()
	if _, err := r.nc.Write(p.Append(nil, r.v)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawClient) expect() wire.Packet {
	r.t.Helper()
	p, err := r.r.ReadPacket(r.v)
	if err != nil {
		r.t.Fatalf("reading MQTT packet: %v", err)
	}
	return p
}

// next reads the next packet, or the error that ended the connection.
func (r *rawClient) next() (wire.Packet, error) { return r.r.ReadPacket(r.v) }

// waitClosed reads until the server closes the connection (which it does
// after the session's teardown), and returns the packets read meanwhile.
func (r *rawClient) waitClosed() []wire.Packet {
	r.t.Helper()
	var got []wire.Packet
	for range 1000 {
		p, err := r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatal("the server kept the connection open")
			}
			return got
		}
		got = append(got, p)
	}
	r.t.Fatal("the server kept the connection open")
	return nil
}

// connect5 connects a 5.0 client with Clean Start clean and Session
// Expiry expiry and returns its CONNACK.
func connectRaw5(t *testing.T, addr, id string, clean bool, expiry uint32) (*rawClient, *wire.Connack) {
	t.Helper()
	r := dialRaw(t, addr, wire.V5)
	c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V5, CleanStart: clean, KeepAlive: 60, ClientID: id}
	if expiry != 0 {
		c.Props.SessionExpiry = expiry
		c.Props.Set(wire.PropSessionExpiry)
	}
	r.send(c)
	ack, ok := r.expect().(*wire.Connack)
	if !ok || ack.ReasonCode != wire.Success {
		t.Fatalf("want CONNACK 0, got %+v", ack)
	}
	return r, ack
}

// waitFor polls cond (state another goroutine changes) for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
