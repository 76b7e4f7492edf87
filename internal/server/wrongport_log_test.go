package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/server"
	"github.com/tern-broker/tern/internal/testkit"
)

// syncBuf is a log sink safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// linesWith counts the log lines holding every part.
func (s *syncBuf) linesWith(parts ...string) (n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range strings.Split(s.b.String(), "\n") {
		all := l != ""
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// The "logged once": a TLS client hello on the plain AMQP port and
// plain AMQP on the AMQPS port each leave one debug line naming the peer,
// nothing at warn or error, and the broker keeps serving.
func TestWrongProtocolOnAPortIsLoggedOnceAtDebug(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.AMQPAddr, cfg.HTTPAddr, cfg.MQTTAddr, cfg.MQTTWSAddr = "127.0.0.1:0", "", "", ""
	pki.Option("none")(&cfg)
	cfg.MQTTSAddr, cfg.MQTTWSSAddr, cfg.HTTPSAddr = "", "", ""
	logs := &syncBuf{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})

	d := &net.Dialer{Timeout: wait}
	hello, err := d.Dial("tcp", srv.AMQPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	helloPeer := hello.LocalAddr().String()
	if c := tls.Client(hello, pki.ClientConfig()); c.Handshake() == nil {
		t.Fatal("a TLS handshake succeeded on the plain AMQP port")
	}
	hello.Close()
	plain, err := d.Dial("tcp", srv.AMQPSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	plainPeer := plain.LocalAddr().String()
	_ = plain.SetDeadline(time.Now().Add(wait))
	_, _ = plain.Write([]byte("AMQP\x00\x00\x09\x01"))
	_, _ = plain.Read(make([]byte, 64)) // until the broker closes it
	plain.Close()

	for _, peer := range []string{helloPeer, plainPeer} {
		testkit.Eventually(t, wait, "a log line for "+peer, func() bool { return logs.linesWith("peer="+peer) > 0 })
	}
	// A good connection afterwards: the broker serves, and the bad ones
	// have still been logged once each, at debug.
	c, err := amqp.DialTLS("amqps://guest:guest@"+srv.AMQPSAddr().String()+"/", pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "after-bad-peers")
	_ = c.Close()
	for _, peer := range []string{helloPeer, plainPeer} {
		if n := logs.linesWith("peer="+peer, "level=DEBUG"); n != 1 {
			t.Errorf("%d debug lines for %s, want 1:\n%s", n, peer, logs)
		}
		if n := logs.linesWith("peer=" + peer); n != 1 {
			t.Errorf("%d lines in all for %s, want 1", n, peer)
		}
	}
}
