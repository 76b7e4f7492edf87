package mqtt

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Connection storms (issue 16). Two limits, both at the accept, before a
// connection costs anything but its socket:
//
//   - per source address (IPv6: per /64): a flood of connections from one address is
//     closed at once, unread, past ConnectRatePerAddress a second (burst as
//     many): counted in tern_mqtt_connections_rate_limited_total.
//   - overall: past ConnectRate a second the accept loop waits, so the
//     connections wait in the kernel's backlog rather than in the broker's
//     memory while a reconnect storm drains: the waits are counted in
//     tern_mqtt_accept_throttled_total.

// addrLimiter limits connections per source address.
type addrLimiter struct {
	limit rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[netip.Addr]*rate.Limiter
}

// maxTrackedAddrs bounds the per-address table: past it, addresses whose
// bucket is full again (quiet for a while) are forgotten.
const maxTrackedAddrs = 1 << 16

func newAddrLimiter(perSecond float64) *addrLimiter {
	if perSecond <= 0 {
		return nil
	}
	burst := max(1, int(perSecond))
	return &addrLimiter{limit: rate.Limit(perSecond), burst: burst, addrs: map[netip.Addr]*rate.Limiter{}}
}

// allow reports whether a connection from a may proceed now.
func (l *addrLimiter) allow(a net.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return true
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return true
	}
	ip = ip.Unmap()
	if ip.Is6() {
		// A host is given a whole /64 and may use any address in it:
		// keyed on the address, one client would have 2^64 buckets.
		if p, err := ip.Prefix(64); err == nil {
			ip = p.Addr()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[ip]
	if lim == nil {
		if len(l.addrs) >= maxTrackedAddrs {
			l.sweepLocked(now)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.addrs[ip] = lim
	}
	return lim.AllowN(now, 1)
}

// sweepLocked forgets addresses whose bucket has refilled.
func (l *addrLimiter) sweepLocked(now time.Time) {
	for ip, lim := range l.addrs {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.addrs, ip)
		}
	}
}

// throttle waits for the overall accept rate; it counts the waits.
func (s *Server) throttle(ctx context.Context) {
	if s.acceptRate == nil {
		return
	}
	r := s.acceptRate.Reserve()
	if d := r.Delay(); d > 0 {
		s.stats.acceptThrottled.Add(1)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			r.Cancel()
		}
	}
}
