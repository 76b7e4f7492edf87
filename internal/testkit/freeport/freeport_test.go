package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The ports are below the ephemeral range, bindable, and never repeated.
func TestLoopbackPortsAreBelowTheEphemeralRangeAndDistinct(t *testing.T) {
	low := ephemeralLow()
	seen := map[string]bool{}
	for range 50 {
		addr := Loopback(t)
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < 1024 || port >= low {
			t.Fatalf("port %d outside [1024, %d)", port, low)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on the handed-out %s: %v", addr, err)
		}
		_ = ln.Close()
	}
}
