package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/server"
)

// Server is an in-process Tern listening on 127.0.0.1 ports chosen by the
// kernel.
type Server struct {
	*server.Server
	URL     string // amqp://guest:guest@127.0.0.1:port/
	HTTPURL string // http://127.0.0.1:port
	MQTTURL string // tcp://127.0.0.1:port
	WSURL   string // ws://127.0.0.1:port/ws
	Config  config.Config

	cancel context.CancelFunc
	done   chan error
	err    error
	once   sync.Once
}

// Shutdown stops the server as SIGTERM would and waits for it.
func (s *Server) Shutdown() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(10 * time.Second):
			s.err = fmt.Errorf("server did not stop within 10s")
		}
	})
	return s.err
}

// Option adjusts the configuration before the server starts.
type Option func(*config.Config)

// WithDataDir makes the server use dir, so a test can restart a node on the
// same data.
func WithDataDir(dir string) Option { return func(c *config.Config) { c.DataDir = dir } }

// WithClock makes the whole server tell time by c (config.Config.Clock):
// give it a *clock.Fake and advance it to make expiries, delayed messages,
// rate limits and alarm holds come due without sleeping. Restart keeps it.
// Start the fake at time.Now(): what does not read the clock yet (queue
// TTLs) compares publish times with real time. A publisher held by a rate
// limit sleeps on the fake clock until it is advanced, so advance it before
// the test ends or shutdown waits for that connection.
func WithClock(c clock.Clock) Option { return func(cfg *config.Config) { cfg.Clock = c } }

// Restart shuts s down and starts a new server on the same data directory
// and configuration (new ports).
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	cfg := s.Config
	return Start(t, func(c *config.Config) {
		*c = cfg
		c.AMQPAddr, c.HTTPAddr, c.MQTTAddr, c.MQTTWSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		if c.TLSEnabled() {
			c.AMQPSAddr, c.MQTTSAddr, c.MQTTWSSAddr, c.HTTPSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		}
	})
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AMQPAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MQTTAddr = "127.0.0.1:0"
	cfg.MQTTWSAddr = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	level := slog.LevelError
	if os.Getenv("TERN_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s := &Server{Server: srv, Config: cfg, cancel: cancel, done: done}
	t.Cleanup(func() {
		if err := s.Shutdown(); err != nil {
			t.Errorf("server: %v", err)
		}
	})
	if a := srv.AMQPAddr(); a != nil {
		s.URL = fmt.Sprintf("amqp://guest:guest@%s/", a)
	}
	if a := srv.MQTTAddr(); a != nil {
		s.MQTTURL = "tcp://" + a.String()
	}
	if a := srv.MQTTWSAddr(); a != nil {
		s.WSURL = "ws://" + a.String() + "/ws"
	}
	if a := srv.HTTPAddr(); a != nil {
		s.HTTPURL = "http://" + a.String()
	}
	return s
}

// Dial connects an amqp091-go client and closes it when the test ends.
func (s *Server) Dial(t testing.TB) *amqp.Connection {
	t.Helper()
	c, err := amqp.Dial(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Channel dials and opens a channel.
func (s *Server) Channel(t testing.TB) (*amqp.Connection, *amqp.Channel) {
	t.Helper()
	c := s.Dial(t)
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return c, ch
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Receive waits for one delivery.
func Receive(t testing.TB, deliveries <-chan amqp.Delivery, timeout time.Duration) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(timeout):
		t.Fatalf("no delivery within %v", timeout)
	}
	return amqp.Delivery{}
}

// NoDelivery asserts nothing arrives within wait.
func NoDelivery(t testing.TB, deliveries <-chan amqp.Delivery, wait time.Duration) {
	t.Helper()
	select {
	case d := <-deliveries:
		t.Fatalf("unexpected delivery %q", d.Body)
	case <-time.After(wait):
	}
}
