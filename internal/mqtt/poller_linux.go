package mqtt

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches parked connections' sockets with an epoll instance of its
// own, beside the Go runtime's: a parked connection has no goroutine, and
// when its socket becomes readable (or hangs up) the poller starts one.
// Each registration is one-shot, re-armed when the connection parks again;
// its data is the connection's id, never a pointer or a bare descriptor
// number, so an event for a connection that has ended is ignored. The
// epoll calls run inside RawConn.Control, which holds the descriptor open,
// so a descriptor number reused by a newer socket is never touched.
type poller struct {
	epfd   int
	wakeR  int // a pipe's read end: written to stop the loop
	wakeW  int
	mu     sync.Mutex
	conns  map[uint64]*conn // id → parked or running connection
	closed bool
	done   chan struct{}
}

// pollerSupported reports whether this platform has the event loop.
const pollerSupported = true

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, 0) // connection ids start at 1
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(p[0])
		_ = unix.Close(p[1])
		return nil, err
	}
	pl := &poller{epfd: epfd, wakeR: p[0], wakeW: p[1], conns: map[uint64]*conn{}, done: make(chan struct{})}
	go pl.loop()
	return pl, nil
}

func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// arm (re-)registers c's socket for one readiness event. Level-triggered:
// bytes that arrived before it are reported at once.
func (p *poller) arm(c *conn) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errPollerClosed
	}
	first := !c.polled
	if first {
		p.conns[c.id] = c
		c.polled = true
	}
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setEventID(&ev, c.id)
	var cerr error
	err := c.raw.Control(func(fd uintptr) {
		op := unix.EPOLL_CTL_MOD
		if first {
			op = unix.EPOLL_CTL_ADD
		}
		cerr = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	if err != nil {
		return err
	}
	return cerr
}

// forget drops c: it has ended. Its socket leaves the epoll set when it is
// closed.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c.id)
	p.mu.Unlock()
}

var errPollerClosed = errors.New("mqtt: poller closed")

func (p *poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == 0 {
				_ = unix.Close(p.epfd)
				_ = unix.Close(p.wakeR)
				return
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				c.wake(wakeReadable)
			}
		}
	}
}

// close stops the loop. Connections still registered are the caller's to
// end (they have been kicked and end on their own goroutines).
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_, _ = unix.Write(p.wakeW, []byte{0})
	<-p.done
	_ = unix.Close(p.wakeW)
}
