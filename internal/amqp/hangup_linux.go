package amqp

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerHungUp reports whether the client closed or reset the connection,
// without reading what it sent before: poll(2) with POLLRDHUP sees a FIN
// (and POLLHUP/POLLERR a reset) behind unread data, which a read would
// reach only after consuming the data. A blocked connection whose read-ahead
// is full uses it to notice a client that died with publishes in flight.
func peerHungUp(nc net.Conn) bool {
	// A TLS connection is polled on the TCP socket under it: a FIN or a
	// reset shows there whatever TLS records (close_notify included) wait
	// unread.
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var revents int16
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n > 0 {
			revents = fds[0].Revents
		}
	})
	return revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}
