package mqtt

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
)

// A network error that Linux's accept(2) passes on from the new
// connection (EPROTO, ENETUNREACH…: "treat them like EAGAIN") is retried:
// it ends that connection, not the listener. (Before, one such error with
// no connection in the batch returned from Accept, and the MQTT server
// stopped serving its listener, disconnecting every client.)
func TestRawListenerRetriesPendingNetworkErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EPROTO, syscall.ENETDOWN, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
		syscall.ENONET, syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rl, err := newRawListener(ln.(*net.TCPListener))
		if err != nil {
			t.Fatal(err)
		}
		failed := false
		rl.accept4 = func(fd, flags int) (int, syscall.Sockaddr, error) {
			if !failed {
				failed = true
				return -1, nil, errno
			}
			return syscall.Accept4(fd, flags)
		}
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := rl.Accept()
		if err != nil {
			t.Fatalf("%v: Accept failed: %v", errno, err)
		}
		if !failed {
			t.Fatalf("%v: the error was not injected", errno)
		}
		_ = got.Close()
		_ = client.Close()
		_ = rl.Close()
	}
}

// An accept error that ends MQTT serving on a listener is logged when it
// happens.
func TestServeLogsTheErrorThatEndsIt(t *testing.T) {
	var logs logSink
	srv, err := NewServer(Config{}, newTestBroker(nil), auth.NewStore(), slog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Serve(ctx, failingListener{}); err == nil {
		t.Fatal("Serve returned no error")
	}
	if !logs.has("MQTT listener failed") {
		t.Fatalf("no log line for the failure; got %q", logs.lines())
	}
}

type failingListener struct{}

func (failingListener) Accept() (net.Conn, error) { return nil, errors.New("broken listener") }
func (failingListener) Close() error              { return nil }
func (failingListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// logSink is a slog.Handler keeping the messages logged.
type logSink struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

func (l *logSink) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.msgs...)
}

func (l *logSink) has(prefix string) bool {
	for _, m := range l.lines() {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}
