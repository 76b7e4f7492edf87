package transport

import (
	"net"
	"time"
)

// idleReader is what a connection's bufio.Reader reads from. Once armed
// (after the handshake, which runs under its own deadline) every read
// pushes the read deadline IdleTimeout ahead, so the deadline measures
// silence, not the length of a frame: a 64 MiB snapshot arriving slowly
// keeps its connection while bytes flow. The deadline is moved at most
// four times per IdleTimeout, not on every read.
type idleReader struct {
	net.Conn
	idle  time.Duration
	armed bool
	set   time.Time
}

func (r *idleReader) Read(p []byte) (int, error) {
	if r.armed {
		if now := time.Now(); now.Sub(r.set) > r.idle/4 {
			r.Conn.SetReadDeadline(now.Add(r.idle))
			r.set = now
		}
	}
	return r.Conn.Read(p)
}
