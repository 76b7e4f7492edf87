package transport

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// stall opens a connection from src that sends the first byte of a hello
// and then nothing: it holds a handshake slot until the handshake timeout.
func stall(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	nc := dialFrom(t, src, addr)
	if _, err := nc.Write([]byte(helloMagic[:1])); err != nil {
		t.Fatal(err)
	}
	return nc
}

// closedSoon reports whether the server closes nc within a second.
func closedSoon(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Second))
	_, err := nc.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

// Unauthenticated connections that stall must not lock a peer out
// for the handshake timeout (finding 8): one address holds at most
// maxHandshakesPerIP handshakes, and a known peer's address does not
// need one of the shared slots that many addresses can fill.
func TestHandshakeFloodDoesNotLockOutPeer(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "127.0.0.3:0", func(c *TCPConfig) { c.HandshakeTimeout = 60 * time.Second })
	// One address: beyond its share, refused at once.
	for range maxHandshakesPerIP {
		stall(t, "127.0.0.19", n2.Addr().String())
	}
	waitFor(t, "one address's handshakes", nil, func() bool { return len(n2.handshakes) == maxHandshakesPerIP })
	if !closedSoon(dialFrom(t, "127.0.0.19", n2.Addr().String())) {
		t.Fatalf("handshake %d from one address was not refused", maxHandshakesPerIP+1)
	}
	// Many addresses: every shared slot taken.
	for i := 0; len(n2.handshakes) < maxHandshakes && i < 2*maxHandshakes; i++ {
		stall(t, fmt.Sprintf("127.0.0.%d", 20+i/maxHandshakesPerIP), n2.Addr().String())
		waitFor(t, "a slot taken", nil, func() bool { return len(n2.handshakes) >= min(maxHandshakes, maxHandshakesPerIP+i+1) })
	}
	if len(n2.handshakes) != maxHandshakes {
		t.Fatalf("%d of %d handshake slots taken", len(n2.handshakes), maxHandshakes)
	}
	// A known peer still gets in, at once.
	n1 := startNode(t, 1, "127.0.0.2:0", nil)
	meshed(n1, n2)
	waitConnected(t, n1, n2)
}

// A connection that says nothing gives its handshake slot back after
// firstBytesTimeout, not after the (long) handshake timeout; one that
// has spoken has the whole handshake timeout.
func TestSilentConnectionClosedEarly(t *testing.T) {
	t.Parallel()
	n2 := startNode(t, 2, "", func(c *TCPConfig) { c.HandshakeTimeout = 30 * time.Second })
	silent := dialFrom(t, "127.0.0.1", n2.Addr().String())
	spoke := dialFrom(t, "127.0.0.1", n2.Addr().String())
	if _, err := spoke.Write([]byte(helloMagic[:2])); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("silent connection: %v, want it closed", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("silent connection closed after %v", el)
	}
	if closedSoon(spoke) {
		t.Fatal("a connection that spoke was closed before the handshake timeout")
	}
}
