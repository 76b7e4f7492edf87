package mqtt

import (
	"net"
	"testing"
	"time"
)

// TestAddrLimiterKeysIPv6On64: one host holds a whole IPv6 /64, so the
// per-address limit counts the /64; IPv4 addresses count alone
// (finding 7).
func TestAddrLimiterKeysIPv6On64(t *testing.T) {
	l := newAddrLimiter(1)
	now := time.Unix(1000, 0)
	addr := func(s string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(s), Port: 1} }
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"2001:db8::1", true},
		{"2001:db8::2", false}, // same /64, burst 1 used
		{"2001:db8:0:1::1", true},
		{"192.0.2.1", true},
		{"192.0.2.2", true},
	} {
		if got := l.allow(addr(tc.ip), now); got != tc.want {
			t.Errorf("allow(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}
