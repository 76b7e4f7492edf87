package mqtt

import (
	"net"
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A 3.1.1 connection whose QoS 1/2 publish could not be taken ends soon
// even when its client does not read (its outbox cannot flush) and the
// failure is noticed off the reader's goroutine: the reader is woken as
// for any kick. (Before, only the outbox was told to close after its
// flush, which never came, so the connection lived on until the write
// timeout, and later kicks were no-ops.)
func TestPublishFailureEndsAConnectionWhoseClientDoesNotRead(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{NoEventLoop: true})
	server, client := net.Pipe() // writes block until the client reads: it never does
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	c := newConn(s.Server, server)
	s.conns.Add(c)
	c.start(nil) // served on a goroutine of its own, reading with deadlines
	connect := &wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 600, ClientID: "nr"}
	if _, err := client.Write(connect.Append(nil, wire.V311)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the CONNACK", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.acked
	})
	c.publishFailed() // as a durability callback would, off the reader
	select {
	case <-c.finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end")
	}
	if got := c.kicked.Load(); got != kickPublishFailed {
		t.Fatalf("logged reason %#x, want kickPublishFailed", got)
	}
}
