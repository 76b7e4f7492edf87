package mqtt

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sockConn is a TCP connection accepted by rawListener: a non-blocking
// socket this package owns, registered only with the server's own poller
// (poller_linux.go). A *net.TCPConn costs, per accept, a registration
// with the Go runtime's poller (epoll_ctl, and its removal at close), a
// getsockname for the local address and a TCP_NODELAY setsockopt — about a
// fifth of the broker's CPU per connect in a storm, for a connection that
// then sits parked on the server's poller, which is the one that wakes it.
//
// Reads and writes go straight to the socket, never waiting. Only the
// calls that must wait — a Write the socket cannot take whole, a Read
// with nothing to read (a busy connection lingering, io.go) — hand the
// descriptor to the runtime's poller, once: os.NewFile on the same
// descriptor (no dup), which then waits and honours deadlines. A parked
// idle connection never gets there.
//
// The descriptor's lifetime is counted: every use holds a reference, and
// Close closes it when the last use ends, so a number reused by a newer
// socket is never read, written or (un)registered.
type sockConn struct {
	fd     int
	refs   atomic.Int64 // uses in progress, plus sockClosed once closed
	raddr  *net.TCPAddr
	lnAddr *net.TCPAddr // the listener's address
	laddr  atomic.Pointer[net.TCPAddr]

	mu   sync.Mutex // serialises promote
	file atomic.Pointer[os.File]
	// Deadlines set before promote, applied to the file when it is made.
	rdl, wdl atomic.Int64 // UnixNano; 0: none
}

const sockClosed = 1 << 62

func newSockConn(fd int, sa syscall.Sockaddr, ln *net.TCPAddr) *sockConn {
	c := &sockConn{fd: fd, lnAddr: ln}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		c.raddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)))
	case *syscall.SockaddrInet6:
		c.raddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)))
	default:
		c.raddr = &net.TCPAddr{}
	}
	return c
}

func (c *sockConn) incref() bool {
	for {
		v := c.refs.Load()
		if v&sockClosed != 0 {
			return false
		}
		if c.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (c *sockConn) decref() {
	if c.refs.Add(-1) == sockClosed {
		c.destroy()
	}
}

// destroy closes the descriptor: the last use has ended.
func (c *sockConn) destroy() {
	if f := c.file.Load(); f != nil {
		_ = f.Close()
		return
	}
	_ = unix.Close(c.fd)
}

// Close closes the socket once no call uses it; calls waiting in the
// runtime's poller are woken (their deadline is moved to the past).
func (c *sockConn) Close() error {
	for {
		v := c.refs.Load()
		if v&sockClosed != 0 {
			return net.ErrClosed
		}
		if c.refs.CompareAndSwap(v, v|sockClosed) {
			if f := c.file.Load(); f != nil {
				_ = f.SetDeadline(time.Unix(1, 0))
			}
			if v == 0 {
				c.destroy()
			}
			return nil
		}
	}
}

// promote hands the descriptor to the runtime's poller (once), for a call
// that must wait. The caller holds a reference.
func (c *sockConn) promote() (*os.File, error) {
	if f := c.file.Load(); f != nil {
		return f, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.file.Load(); f != nil {
		return f, nil
	}
	// The descriptor is non-blocking, so os.NewFile registers it with the
	// runtime's poller and its calls wait there.
	f := os.NewFile(uintptr(c.fd), "mqtt-socket")
	if f == nil {
		return nil, os.ErrInvalid
	}
	if d := c.rdl.Load(); d != 0 {
		_ = f.SetReadDeadline(time.Unix(0, d))
	}
	if d := c.wdl.Load(); d != 0 {
		_ = f.SetWriteDeadline(time.Unix(0, d))
	}
	c.file.Store(f)
	if c.refs.Load()&sockClosed != 0 {
		_ = f.SetDeadline(time.Unix(1, 0)) // Close ran before the file existed
	}
	return f, nil
}

// Read reads what the socket holds, waiting (in the runtime's poller) only
// when it holds nothing.
func (c *sockConn) Read(b []byte) (int, error) {
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	if f := c.file.Load(); f != nil {
		return f.Read(b)
	}
	if d := c.rdl.Load(); d != 0 && time.Now().UnixNano() >= d {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := ignoringEINTR(func() (int, error) { return unix.Read(c.fd, b) })
	switch {
	case err == unix.EAGAIN:
		f, perr := c.promote()
		if perr != nil {
			return 0, perr
		}
		return f.Read(b)
	case err != nil:
		return 0, err
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes b whole, waiting (in the runtime's poller) only for what
// the socket cannot take at once.
func (c *sockConn) Write(b []byte) (int, error) {
	if !c.incref() {
		return 0, net.ErrClosed
	}
	defer c.decref()
	if f := c.file.Load(); f != nil {
		return f.Write(b)
	}
	if d := c.wdl.Load(); d != 0 && time.Now().UnixNano() >= d {
		return 0, os.ErrDeadlineExceeded
	}
	done := 0
	for done < len(b) {
		n, err := ignoringEINTR(func() (int, error) { return unix.Write(c.fd, b[done:]) })
		if err == unix.EAGAIN {
			f, perr := c.promote()
			if perr != nil {
				return done, perr
			}
			m, err := f.Write(b[done:])
			return done + m, err
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }

// LocalAddr is the listener's address, or the socket's own when the
// listener is on an unspecified address (asked once).
func (c *sockConn) LocalAddr() net.Addr {
	if !c.lnAddr.IP.IsUnspecified() {
		return c.lnAddr
	}
	if a := c.laddr.Load(); a != nil {
		return a
	}
	a := c.lnAddr
	if c.incref() {
		if sa, err := unix.Getsockname(c.fd); err == nil {
			switch s := sa.(type) {
			case *unix.SockaddrInet4:
				a = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port)))
			case *unix.SockaddrInet6:
				a = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port)))
			}
		}
		c.decref()
	}
	c.laddr.Store(a)
	return a
}

func (c *sockConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *sockConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, t, (*os.File).SetReadDeadline)
}

func (c *sockConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, t, (*os.File).SetWriteDeadline)
}

func (c *sockConn) setDeadline(d *atomic.Int64, t time.Time, set func(*os.File, time.Time) error) error {
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	if t.IsZero() {
		d.Store(0)
	} else {
		d.Store(max(t.UnixNano(), 1))
	}
	if f := c.file.Load(); f != nil {
		return set(f, t)
	}
	return nil
}

// SetKeepAliveConfig turns TCP keep-alive on as *net.TCPConn does, with
// Go's defaults for the unset fields (15 s idle, 15 s apart, 9 probes).
func (c *sockConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	secs := func(d time.Duration) int {
		if d <= 0 {
			return 15
		}
		return max(int(d/time.Second), 1)
	}
	on := 0
	if cfg.Enable {
		on = 1
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, on); err != nil || !cfg.Enable {
		return err
	}
	cnt := cfg.Count
	if cnt <= 0 {
		cnt = 9
	}
	_ = unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs(cfg.Idle))
	_ = unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs(cfg.Interval))
	return unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, cnt)
}

// rawConn is the socket as a syscall.RawConn: each call holds a reference
// for its function's run. The package's functions never ask to wait
// (they return true); one that does gets the runtime's poller.
func (c *sockConn) rawConn() syscall.RawConn { return sockRaw{c} }

type sockRaw struct{ c *sockConn }

func (r sockRaw) Control(f func(fd uintptr)) error {
	if !r.c.incref() {
		return net.ErrClosed
	}
	defer r.c.decref()
	f(uintptr(r.c.fd))
	return nil
}

func (r sockRaw) Read(f func(fd uintptr) bool) error  { return r.io(f, syscall.RawConn.Read) }
func (r sockRaw) Write(f func(fd uintptr) bool) error { return r.io(f, syscall.RawConn.Write) }

func (r sockRaw) io(f func(fd uintptr) bool, wait func(syscall.RawConn, func(uintptr) bool) error) error {
	if !r.c.incref() {
		return net.ErrClosed
	}
	defer r.c.decref()
	// The descriptor stays open while the reference is held, file or
	// not: the function may use it directly.
	if f(uintptr(r.c.fd)) {
		return nil
	}
	file, err := r.c.promote()
	if err != nil {
		return err
	}
	rc, err := file.SyscallConn()
	if err != nil {
		return err
	}
	return wait(rc, f)
}

// rawListener accepts with accept4(2) on a *net.TCPListener's socket, up
// to acceptBatch connections per wake-up, and returns them as *sockConn.
// The listener's own RawConn cannot wait for readiness (its Read is not
// supported), so a duplicate of its descriptor, wrapped in an os.File,
// waits in the runtime's poller; Close closes both.
type rawListener struct {
	tl    *net.TCPListener
	f     *os.File // the duplicate
	rc    syscall.RawConn
	addr  *net.TCPAddr
	batch []*sockConn
	next  int
	// accept4 is syscall.Accept4 (a test makes it fail).
	accept4 func(fd, flags int) (int, syscall.Sockaddr, error)
}

const acceptBatch = 64

// newRawListener wraps tl. TCP_NODELAY is set once on the listening
// socket: Linux copies it to every socket accepted from it, so each
// connection has it (as *net.TCPConn sets per accept) without a
// setsockopt of its own. MQTT's packets are small and a delivery stream
// writes them back to back: with Nagle's algorithm a PUBLISH would wait
// for the previous one's ACK.
func newRawListener(tl *net.TCPListener) (*rawListener, error) {
	addr, ok := tl.Addr().(*net.TCPAddr)
	if !ok {
		return nil, os.ErrInvalid
	}
	trc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup, serr := -1, error(nil)
	if err := trc.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); serr != nil {
			return
		}
		dup, serr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	// The duplicate shares the original's O_NONBLOCK, so os.NewFile
	// registers it with the runtime's poller.
	f := os.NewFile(uintptr(dup), "mqtt-listener")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &rawListener{tl: tl, f: f, rc: rc, addr: addr, batch: make([]*sockConn, 0, acceptBatch),
		accept4: syscall.Accept4}, nil
}

func (l *rawListener) Accept() (net.Conn, error) {
	if l.next < len(l.batch) {
		c := l.batch[l.next]
		l.batch[l.next] = nil
		l.next++
		return c, nil
	}
	l.batch, l.next = l.batch[:0], 0
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		for len(l.batch) < cap(l.batch) {
			// syscall's Accept4, not x/sys/unix's: that one asks every
			// IPv4 and IPv6 socket for its protocol (a getsockopt) to
			// tell L2TP apart.
			nfd, sa, err := l.accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch err {
			case nil:
				l.batch = append(l.batch, newSockConn(nfd, sa, l.addr))
				continue
			case syscall.EINTR, syscall.ECONNABORTED,
				// Linux's accept(2) passes on network errors already
				// pending on the new connection, and says to treat them
				// like EAGAIN by retrying: they end that one connection,
				// not the listener. (Go's net package retries only
				// ECONNABORTED.)
				syscall.EPROTO, syscall.ENETDOWN, syscall.ENOPROTOOPT, syscall.EHOSTDOWN,
				syscall.ENONET, syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH:
				continue
			case syscall.EAGAIN:
				return len(l.batch) > 0 // nothing pending: wait in the runtime's poller
			}
			aerr = err
			return true
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(l.batch) == 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: os.NewSyscallError("accept4", aerr)}
	}
	l.next = 1
	c := l.batch[0]
	l.batch[0] = nil
	return c, nil
}

func (l *rawListener) Close() error {
	err := l.tl.Close()
	_ = l.f.Close() // wakes an Accept waiting in the runtime's poller
	return err
}
func (l *rawListener) Addr() net.Addr { return l.addr }

// acceptRaw returns ln as a rawListener when it is a plain TCP listener
// (the event loop then owns its connections' sockets), else ln itself.
func acceptRaw(ln net.Listener) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	rl, err := newRawListener(tl)
	if err != nil {
		return ln
	}
	return rl
}

// pollRaw is the descriptor access of a connection the event loop can
// park: a *sockConn or a *net.TCPConn; nil for any other.
func pollRaw(nc net.Conn) syscall.RawConn {
	switch c := nc.(type) {
	case *sockConn:
		return c.rawConn()
	case *net.TCPConn:
		if raw, err := c.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}

// sockNow reads or writes a sockConn's socket without waiting and without
// a closure: RawConn.Read and Write take one, which escapes, so the event
// loop allocated one per packet read and per write. ok is false for any
// other connection (the caller goes through its RawConn).
func sockNow(raw syscall.RawConn, b []byte, write bool) (n int, err error, ok bool) {
	r, isSock := raw.(sockRaw)
	if !isSock {
		return 0, nil, false
	}
	if !r.c.incref() {
		return 0, net.ErrClosed, true
	}
	if write {
		n, err = sysWrite(r.c.fd, b)
	} else {
		n, err = sysRead(r.c.fd, b)
	}
	r.c.decref()
	return n, err, true
}
