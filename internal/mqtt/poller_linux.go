package mqtt

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches parked connections' sockets with an epoll instance of its
// own, beside the Go runtime's: a parked connection has no goroutine, and
// when its socket becomes readable (or hangs up) the poller serves it or
// starts one (inline.go). A registration is one-shot, re-armed when the
// connection parks again, or edge-triggered and kept (arm);
// its data is the connection's id, never a pointer or a bare descriptor
// number, so an event for a connection that has ended is ignored. The
// epoll calls run inside RawConn.Control, which holds the descriptor open,
// so a descriptor number reused by a newer socket is never touched.
//
// The loop never blocks in epoll_wait itself: the sockets' epoll
// descriptor sits inside a second one, the gate, which is registered with
// the Go runtime's poller (an epoll descriptor is readable while events
// are ready), and the loop waits there, then collects the events with a
// non-blocking epoll_wait. While events come thick and fast the loop
// closes the gate and gathers them a window at a time (gather_linux.go). A goroutine blocked in a system call holds its
// thread and, on two cores, has its P taken by the runtime's monitor every
// 20 µs of a busy storm (a thread hand-off each time); parked in the
// runtime's poller it costs nothing until events come.
type poller struct {
	// epfd holds the sockets. It is not in the runtime's poller: gate is,
	// with epfd inside it (gather_linux.go).
	epfd   *os.File
	raw    syscall.RawConn // epfd's
	gate   *os.File        // the gate's epoll descriptor as the runtime's poller sees it; closing it stops the loop
	graw   syscall.RawConn
	mu     sync.Mutex
	conns  map[uint64]*conn // id → parked or running connection
	closed bool
	done   chan struct{}
	// burst (the event loop's) is open while the loop serves a batch of
	// events: the deliveries of the publishes it serves are written once
	// the batch is done (inline.go).
	burst *writeBatch
	// stop is set by close: a loop gathering (gate.go) sees it between
	// windows.
	stop atomic.Bool
	// gathers counts the loop's gatherings; gathering is set during one
	// (tests look).
	gathers   atomic.Int64
	gathering atomic.Bool
	// lastWake is when the loop last found events (nanotime-like, from
	// time.Now): gathering starts when they come closer than gatherWindow.
	lastWake int64
}

// pollerSupported reports whether this platform has the event loop.
const pollerSupported = true

// newPoller starts the poller; burst is the event loop's write batch,
// open while the loop serves a batch of events.
func newPoller(burst *writeBatch) (*poller, error) {
	// The sockets' epoll descriptor stays blocking, so os.NewFile does not
	// register it with the runtime's poller: only the gate is.
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	gfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: gateOpen}
	err = unix.EpollCtl(gfd, unix.EPOLL_CTL_ADD, epfd, &ev)
	if err == nil {
		// Non-blocking, so that os.NewFile registers it with the
		// runtime's poller.
		err = unix.SetNonblock(gfd, true)
	}
	if err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(gfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "mqtt-epoll")
	g := os.NewFile(uintptr(gfd), "mqtt-epoll-gate")
	raw, err := f.SyscallConn()
	var graw syscall.RawConn
	if err == nil {
		graw, err = g.SyscallConn()
	}
	if err != nil {
		_ = f.Close()
		_ = g.Close()
		return nil, err
	}
	pl := &poller{epfd: f, raw: raw, gate: g, graw: graw, conns: map[uint64]*conn{}, done: make(chan struct{}), burst: burst}
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

// arm (re-)registers c's socket for readiness as it parks. A connection
// the loop serves (inline.go) stays registered edge-triggered between
// wake-ups, so parking it again costs no system call: an event that comes
// while it runs is recorded (wake's flagWake) and park then reads again
// instead of parking. Any other is registered for one event. Either way
// the (re-)registration reports at once bytes that came before it.
func (p *poller) arm(c *conn) error {
	et := c.loopServes()
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
	if et && c.armedET {
		return nil
	}
	c.armedET = false
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	if et {
		ev.Events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	}
	setEventID(&ev, c.id)
	op := unix.EPOLL_CTL_MOD
	if first {
		op = unix.EPOLL_CTL_ADD
	}
	var cerr error
	err := c.raw.Control(func(fd uintptr) {
		// Both descriptors are held open for the call: neither number
		// can have been reused by another file.
		if perr := p.raw.Control(func(ep uintptr) { cerr = sysEpollCtl(int(ep), op, int(fd), &ev) }); perr != nil {
			cerr = errPollerClosed
		}
	})
	if err != nil {
		return err
	}
	if cerr == nil {
		c.armedET = et
	}
	return cerr
}

// disarm stops the events of an edge-triggered registration while a
// runner serves c for a while (a streaming publisher lingering in the
// runtime's poller): each packet would wake the loop for nothing. The
// next park registers it again.
func (p *poller) disarm(c *conn) {
	if !c.armedET {
		return
	}
	c.armedET = false
	ev := unix.EpollEvent{Events: unix.EPOLLONESHOT}
	setEventID(&ev, c.id)
	_ = c.raw.Control(func(fd uintptr) {
		_ = p.raw.Control(func(ep uintptr) { _ = sysEpollCtl(int(ep), unix.EPOLL_CTL_MOD, int(fd), &ev) })
	})
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
	var found bool
	var werr error
	// wait is called by the gate's Read until it returns true, waiting in
	// the runtime's poller for the gate to become readable each time it
	// returns false; Read fails once the gate is closed.
	wait := func(uintptr) bool {
		n, err := p.collect(events)
		if err != nil {
			werr = err
			return true
		}
		found = n > 0
		return found
	}
	for werr == nil {
		if err := p.graw.Read(wait); err != nil || werr != nil {
			return
		}
		if found && p.busy() {
			if err := p.gather(events); err != nil {
				return
			}
		}
	}
}

// collect serves the events ready now (epoll_wait that never waits),
// several batches if one is full, and says how many it served.
func (p *poller) collect(events []unix.EpollEvent) (int, error) {
	total := 0
	for {
		var n int
		var werr error
		err := p.raw.Control(func(fd uintptr) { n, werr = sysEpollWait(int(fd), events) })
		if err != nil {
			return total, err
		}
		if werr != nil {
			if errors.Is(werr, syscall.EINTR) {
				continue
			}
			return total, werr
		}
		if n == 0 {
			return total, nil
		}
		if p.burst != nil {
			p.burst.begin()
		}
		for i := range events[:n] {
			p.dispatch(eventID(&events[i]))
		}
		if p.burst != nil {
			p.burst.flush(false)
		}
		total += n
		if n < len(events) {
			return total, nil
		}
	}
}

// dispatch wakes the connection an event is for, if it is still there.
func (p *poller) dispatch(id uint64) {
	p.mu.Lock()
	c := p.conns[id]
	p.mu.Unlock()
	if c != nil {
		c.wake(wakeReadable)
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
	p.stop.Store(true)
	_ = p.gate.Close() // wakes the loop's Read with an error
	<-p.done
	_ = p.epfd.Close()
}
