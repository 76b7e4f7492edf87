//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	mqttwire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// connackWait is how long the storm waits for the last CONNACKs after the
// last connect was due.
const connackWait = 30 * time.Second

// Connection states in a storm's event loop.
const (
	stConnecting uint8 = iota // connect issued, CONNECT not yet written
	stSent                    // CONNECT written, CONNACK awaited
	stAcked                   // CONNACK 0 received: held open
	stFailed
)

// stormLoop is the Linux storm client: the pacing goroutine (dial) opens a
// non-blocking socket per connection, binds it to its source address,
// starts connect(2) and registers it, edge-triggered, with one epoll
// instance; the event loop (loop) writes the CONNECT (a template with the
// connection's index patched into the client id) when the socket becomes
// writable and reads the 4-byte CONNACK when it becomes readable. Per
// connection that is socket, bind, connect, epoll_ctl, write and one or
// two reads, no goroutine and no allocation.
type stormLoop struct {
	st      *storm
	start   time.Time
	dst     unix.SockaddrInet4
	srcs    []unix.SockaddrInet4
	file    *os.File // the epoll descriptor as the runtime's poller sees it
	raw     syscall.RawConn
	fds     []atomic.Int32 // -1: none (not opened, or closed after failing)
	state   []uint8        // owned by the loop goroutine
	acks    [][4]byte      // CONNACK bytes read so far (owned by the loop)
	got     []uint8
	tmpl    []byte // the CONNECT packet; the client id's last digits vary
	digits  int    // how many digits: the id is tmpl[len-digits:]
	settled chan struct{}
	left    atomic.Int64 // connections neither acknowledged nor failed
}

// run opens the storm's connections: the epoll client for IPv4 addresses,
// the portable one otherwise.
func (st *storm) run(ctx context.Context, start time.Time) (func(), error) {
	dst, err := netip.ParseAddrPort(st.addr)
	if err != nil || !dst.Addr().Is4() {
		return st.runDial(ctx, start)
	}
	l := &stormLoop{st: st, start: start, dst: unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}}
	for _, s := range st.sources {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return st.runDial(ctx, start)
		}
		l.srcs = append(l.srcs, unix.SockaddrInet4{Addr: a.As4()})
	}
	if err := l.init(); err != nil {
		return nil, err
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		l.loop()
	}()
	dialErr := l.dial(ctx)
	// Wait for the last CONNACKs, then stop the loop before reading what
	// it owns.
	timer := time.NewTimer(time.Until(st.due(start, st.n)) + connackWait)
	select {
	case <-l.settled:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	_ = l.file.Close()
	<-loopDone
	for i := range st.n {
		if s := l.state[i]; (s == stConnecting || s == stSent) && l.fds[i].Load() >= 0 {
			st.fail(fmt.Errorf("no CONNACK within %v of the last connect", connackWait))
		}
	}
	if dialErr == nil {
		dialErr = ctx.Err()
	}
	return l.closeAll, dialErr
}

func (l *stormLoop) init() error {
	n := l.st.n
	l.fds = make([]atomic.Int32, n)
	for i := range l.fds {
		l.fds[i].Store(-1)
	}
	l.state = make([]uint8, n)
	l.acks = make([][4]byte, n)
	l.got = make([]uint8, n)
	l.settled = make(chan struct{})
	l.left.Store(int64(n))
	if n == 0 {
		close(l.settled)
	}
	l.digits = len(strconv.Itoa(max(n-1, 0)))
	c := &mqttwire.Connect{ProtocolName: "MQTT", Level: mqttwire.V311, CleanStart: l.st.clean,
		KeepAlive: l.st.keepAlive, ClientID: l.st.idPrefix + strings.Repeat("0", l.digits)}
	l.tmpl = c.Append(nil, mqttwire.V311) // the client id is the payload's last field
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("bench: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return fmt.Errorf("bench: epoll: %w", err)
	}
	l.file = os.NewFile(uintptr(epfd), "bench-epoll")
	if l.raw, err = l.file.SyscallConn(); err != nil {
		_ = l.file.Close()
		return fmt.Errorf("bench: epoll: %w", err)
	}
	return nil
}

// dial opens the connections on their schedule.
func (l *stormLoop) dial(ctx context.Context) error {
	st := l.st
	for i := range st.n {
		if d := time.Until(st.due(l.start, i)); d > 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(d)
		}
		if err := l.open(i); err != nil {
			l.settle(i, err)
		}
		st.issued(i)
	}
	return nil
}

// open starts connection i's connect and registers its socket.
func (l *stormLoop) open(i int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if len(l.srcs) > 0 {
		if err := unix.Bind(fd, &l.srcs[i%len(l.srcs)]); err != nil {
			_ = unix.Close(fd)
			return fmt.Errorf("bind: %w", err)
		}
	}
	if err := unix.Connect(fd, &l.dst); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		_ = unix.Close(fd)
		return fmt.Errorf("connect: %w", err)
	}
	l.fds[i].Store(int32(fd))
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(i)}
	var cerr error
	if err := l.raw.Control(func(ep uintptr) { cerr = unix.EpollCtl(int(ep), unix.EPOLL_CTL_ADD, fd, &ev) }); err != nil {
		cerr = err
	}
	if cerr != nil {
		l.fds[i].Store(-1)
		_ = unix.Close(fd)
		return fmt.Errorf("epoll_ctl: %w", cerr)
	}
	return nil
}

// settle counts connection i as failed before the loop saw it (the
// dialer's failures) and closes the storm when it was the last.
func (l *stormLoop) settle(i int, err error) {
	l.st.fail(fmt.Errorf("connection %d: %w", i, err))
	l.done()
}

func (l *stormLoop) done() {
	if l.left.Add(-1) == 0 {
		close(l.settled)
	}
}

// loop handles the sockets' events until the epoll file is closed.
func (l *stormLoop) loop() {
	events := make([]unix.EpollEvent, 512)
	buf := append([]byte(nil), l.tmpl...)
	var werr error
	collect := func(ep uintptr) bool {
		n, err := unix.EpollWait(int(ep), events, 0)
		if err != nil {
			if !errors.Is(err, unix.EINTR) {
				werr = err
			}
			return true // EINTR: call again
		}
		now := time.Now()
		for k := range events[:n] {
			l.event(int(events[k].Fd), events[k].Events, buf, now)
		}
		return n == len(events) // a full batch may leave events behind
	}
	for werr == nil {
		if err := l.raw.Read(collect); err != nil {
			return
		}
	}
}

// event advances connection i on an epoll event.
func (l *stormLoop) event(i int, ev uint32, buf []byte, now time.Time) {
	fd := int(l.fds[i].Load())
	if fd < 0 || l.state[i] >= stAcked {
		return
	}
	if l.state[i] == stConnecting {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.failed(i, fd, sockError(fd, "connect"))
			return
		}
		if ev&unix.EPOLLOUT == 0 {
			return
		}
		var num [20]byte
		idx := strconv.AppendInt(num[:0], int64(i), 10)
		d := buf[len(buf)-l.digits:]
		for k := range d {
			d[k] = '0'
		}
		copy(d[l.digits-len(idx):], idx)
		if n, err := unix.Write(fd, buf); n != len(buf) {
			if err == nil {
				err = errors.New("short write")
			}
			l.failed(i, fd, fmt.Errorf("writing CONNECT: %w", err))
			return
		}
		l.state[i] = stSent
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	for l.got[i] < 4 {
		n, err := unix.Read(fd, l.acks[i][l.got[i]:])
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n == 0 {
			if err == nil {
				err = errors.New("connection closed before CONNACK")
			}
			l.failed(i, fd, err)
			return
		}
		l.got[i] += uint8(n)
	}
	// CONNACK: 0x20, remaining length 2, session present 0 or 1, return code.
	if a := l.acks[i]; a[0] != 0x20 || a[1] != 2 || a[2] > 1 || a[3] != 0 {
		l.failed(i, fd, fmt.Errorf("MQTT CONNACK % x", a))
		return
	}
	l.state[i] = stAcked
	l.st.lat.record(now.Sub(l.st.due(l.start, i)))
	l.st.done.Add(1)
	l.done()
}

// failed ends connection i.
func (l *stormLoop) failed(i, fd int, err error) {
	l.state[i] = stFailed
	l.fds[i].Store(-1)
	_ = unix.Close(fd)
	l.settle(i, err)
}

// closeAll closes the connections still open.
func (l *stormLoop) closeAll() {
	for i := range l.fds {
		if fd := l.fds[i].Load(); fd >= 0 {
			_ = unix.Close(int(fd))
		}
	}
}

// sockError is the socket's pending error (a refused connect, say).
func sockError(fd int, op string) error {
	e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if e == 0 {
		return fmt.Errorf("%s: connection hung up", op)
	}
	return fmt.Errorf("%s: %w", op, syscall.Errno(e))
}
