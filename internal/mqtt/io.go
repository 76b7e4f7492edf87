package mqtt

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Connection I/O (docs/design/mqtt.md, "Idle connections").
//
// A plain TCP connection has no goroutine and no buffer while it is idle:
// it is parked on the server's poller (poller_linux.go) with its deadline
// in the server's timing wheel (wheel.go). When bytes arrive for a
// connected client, the poller's goroutine serves the packets that cannot
// wait itself (inline.go). Otherwise — and when its deadline passes or
// another goroutine kicks it — a goroutine is started (run) that
// takes a read buffer from a pool, reads what the socket holds without
// blocking, handles every whole packet, keeps the bytes of an incomplete
// one (exactly those, not a buffer), returns the buffer and parks again.
// Writes go through an on-demand outbox: a writer goroutine exists while
// there are bytes to write. TLS and WebSocket connections (and any other
// net.Conn) keep a goroutine blocked in Read, with a pooled buffer.

// Connection states (conn.state): the low two bits are the state, the
// flags above record what happened while the connection was running.
const (
	stRunning  uint32 = 0 // a goroutine serves it
	stParked   uint32 = 1 // no goroutine: the poller or the wheel starts one
	stDone     uint32 = 2
	flagWake   uint32 = 4 // readable, or kicked, while running
	flagExpire uint32 = 8 // its deadline passed while running
)

// Why a connection is woken.
const (
	wakeReadable = iota
	wakeExpired
	wakeKick
)

// eventLoop is what parked connections wait on; one per Server while it
// serves.
type eventLoop struct {
	poller  *poller
	wheel   *wheel
	runners *runners // runners.go
	// burst is the write batch of the publishes the poller's goroutine
	// serves (inline.go): open while it serves one epoll_wait's events,
	// so their deliveries to a subscriber go out in one write per burst.
	burst writeBatch
}

// readBufSize is a pooled read buffer's size: most packets of an IoT
// connection fit whole; a larger one gets a buffer of its own size.
const readBufSize = 4096

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// inbuf is a connection's read buffer while it runs.
type inbuf struct {
	pooled *[]byte // the pooled buffer, or nil while b is a large packet's own
	b      []byte
	n      int // bytes held in b
	inUse  *atomic.Int64
}

func (c *conn) getInbuf(pending []byte) inbuf {
	c.srv.stats.readBufs.Add(1)
	if len(pending) >= readBufSize {
		b := make([]byte, len(pending)*2)
		return inbuf{b: b, n: copy(b, pending), inUse: &c.srv.stats.readBufs}
	}
	p := readBufs.Get().(*[]byte)
	return inbuf{pooled: p, b: *p, n: copy(*p, pending), inUse: &c.srv.stats.readBufs}
}

// release returns the pooled buffer and gives the bytes still held, copied
// (nil when none).
func (ib *inbuf) release() []byte {
	var rest []byte
	if ib.n > 0 {
		rest = append([]byte(nil), ib.b[:ib.n]...)
	}
	if ib.pooled != nil {
		readBufs.Put(ib.pooled)
	}
	if ib.inUse != nil {
		ib.inUse.Add(-1)
	}
	*ib = inbuf{}
	return rest
}

// room makes sure b can hold need bytes.
func (ib *inbuf) room(need int) {
	if need <= len(ib.b) {
		return
	}
	b := make([]byte, need)
	copy(b, ib.b[:ib.n])
	if ib.pooled != nil {
		readBufs.Put(ib.pooled)
		ib.pooled = nil
	}
	ib.b = b
}

// consume handles every whole packet in ib and keeps the rest at its
// front. It reports the connection's end, if it came.
func (c *conn) consume(ib *inbuf) (reason string, ended bool) {
	// What the packets cause on this connection (acknowledgements, the
	// deliveries an ack frees) goes out in one write after the batch
	// (outbox/hold.go), from this goroutine when the socket takes it.
	c.out.Hold()
	defer c.out.Release(c.writeNow)
	// The deliveries its publishes make to other connections are written
	// by this goroutine too, after the batch (batch.go).
	if c.batch != nil {
		c.batch.begin()
	}
	defer func() {
		if c.batch != nil {
			c.batch.flush(false)
		}
	}()
	off := 0
	defer func() {
		if off > 0 {
			ib.n = copy(ib.b, ib.b[off:ib.n])
			// The keep-alive counts from the last whole packet: the
			// time is taken once per read, not per PUBLISH or PUBACK.
			c.lastPacket = time.Now()
		}
	}()
	for off < ib.n {
		first, body, size, _, err := wire.Split(ib.b[off:ib.n], int(c.srv.cfg.MaxPacketSize))
		if err != nil {
			return c.readError(err), true
		}
		if size == 0 {
			// Incomplete: the reader doubles the buffer when the packet
			// fills it, rather than allocating all of its announced size
			// at once, so a client trickling a large packet costs about
			// what it has sent, not the announced size on every wake-up.
			return "", false
		}
		if c.inline && c.inlineStop(first, body) {
			c.handoff = true // this packet and the rest: a runner's (inline.go)
			return "", false
		}
		off += size
		if reason, ended := c.packet(first, body); ended {
			return reason, true
		}
	}
	return "", false
}

// packet handles one whole packet.
func (c *conn) packet(first byte, body []byte) (reason string, ended bool) {
	if !c.connected {
		p, err := wire.Decode(first, body, 0)
		if err := c.handshake(p, err); err != nil {
			c.logger().Debug("MQTT connect refused", "err", err)
			return "connect refused", true
		}
		c.connected = true
		c.lastPacket = time.Now()
		if r := c.kicked.Load(); r != 0 {
			// Kicked during the handshake, after its CONNACK: the
			// packets behind the CONNECT are not handled (nothing may
			// follow the DISCONNECT); the session's teardown follows.
			return kickReason(r), true
		}
		if ok, unlogged := c.srv.connectLog.allow(c.lastPacket); ok {
			c.srv.log.Info("MQTT client connected", "peer", c.nc.RemoteAddr().String(), "client_id", c.clientID,
				"version", c.v, "user", c.user.Name, "persistent_session", c.persistent, "unlogged", unlogged)
		}
		return "", false
	}
	switch {
	case first>>4 == wire.PUBLISH:
		return c.inboundPublish(first, body)
	case first == wire.PUBACK<<4 && len(body) == 2:
		// A PUBACK without reason code or properties, which is what
		// Decode and ack would make of it, without the allocation.
		// (consume notes the packet's time.)
		c.finishOutbound(uint16(body[0])<<8 | uint16(body[1]))
		return "", false
	}
	c.flushBatch() // what follows may wait (a SUBSCRIBE's declaration…)
	p, err := wire.Decode(first, body, c.v)
	if err != nil {
		return c.readError(err), true
	}
	c.lastPacket = time.Now()
	if err := c.handle(p); err != nil {
		return c.protocolError(err), true
	}
	if c.graceful {
		return "DISCONNECT", true
	}
	return "", false
}

// inPubs are the Publishes inbound PUBLISHes are decoded into: one per
// packet was the largest allocation of the publish path (its properties
// alone are about 250 bytes), and publish keeps nothing of it.
var inPubs = sync.Pool{New: func() any { return new(wire.Publish) }}

// inboundPublish handles a PUBLISH as packet handles the others.
func (c *conn) inboundPublish(first byte, body []byte) (reason string, ended bool) {
	p := inPubs.Get().(*wire.Publish)
	defer func() {
		*p = wire.Publish{}
		inPubs.Put(p)
	}()
	if err := wire.DecodePublishInto(p, first, body, c.v); err != nil {
		return c.readError(err), true
	}
	// consume notes the packet's time once the read's packets are handled.
	if err := c.publish(p); err != nil {
		return c.protocolError(err), true
	}
	return "", false
}

// errWouldBlock: the socket holds no more bytes for now.
var errWouldBlock = errors.New("would block")

// readNow reads what the socket holds without waiting.
func (c *conn) readNow(b []byte) (int, error) { return c.readRaw(b, false) }

// readRaw reads from a polled socket (sysRead: no scheduler hand-off).
// With wait it waits in the runtime's poller, within the read deadline,
// until bytes come; else an empty socket is errWouldBlock.
func (c *conn) readRaw(b []byte, wait bool) (int, error) {
	var n int
	var err, rerr error
	ok := false
	if !wait {
		n, err, ok = sockNow(c.raw, b, false)
		if err == net.ErrClosed {
			rerr, err = err, nil
		}
	}
	if !ok {
		rerr = c.raw.Read(func(fd uintptr) bool {
			n, err = sysRead(int(fd), b)
			return !wait || err != syscall.EAGAIN
		})
	}
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN:
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// writeNow writes b to a polled socket without blocking and returns how
// many bytes it took (0 for other connections: the outbox's writer
// goroutine writes for them).
func (c *conn) writeNow(b []byte) int {
	if c.raw == nil {
		return 0
	}
	n, _, ok := sockNow(c.raw, b, true)
	if ok {
		return n
	}
	_ = c.raw.Write(func(fd uintptr) bool {
		n, _ = sysWrite(int(fd), b)
		return true
	})
	return n
}

// lingerFor is how long a busy connection (woken twice within a second)
// waits for more bytes before it parks.
const lingerFor = 200 * time.Millisecond

// linger reads, waiting up to about lingerFor for bytes; errWouldBlock if
// none came. The read deadline is moved only when it is a quarter of
// lingerFor stale, not twice per wake-up (each move is a runtime timer
// change), and cleared by endLinger before the connection parks.
func (c *conn) linger(b []byte) (int, error) {
	c.loop.poller.disarm(c) // the runtime's poller wakes it meanwhile
	until := time.Now().Add(lingerFor)
	if until.Sub(c.lingerUntil) > lingerFor/4 {
		_ = c.nc.SetReadDeadline(until)
		c.lingerUntil = until
	}
	n, err := c.readRaw(b, true)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.endLinger()
		return 0, errWouldBlock
	}
	return n, err
}

// endLinger clears the read deadline linger set (readNow honours it too).
func (c *conn) endLinger() {
	if !c.lingerUntil.IsZero() {
		_ = c.nc.SetReadDeadline(time.Time{})
		c.lingerUntil = time.Time{}
	}
}

// run serves a polled connection from its wake-up until it parks or ends.
func (c *conn) run() {
	for {
		if c.kicked.Load() != 0 {
			c.end(c.readError(net.ErrClosed))
			return
		}
		// Busy: woken again within a second. A device that connects and
		// then idles parks at once and never lingers. A connection the
		// event loop can serve (inline.go) is busy only when the loop
		// handed it over with its buffer full, and lingers only while its
		// reads fill the buffer: a device sending now and then is served
		// by the loop, not by a goroutine waiting for its next packet.
		now := time.Now().UnixNano()
		busy := now-c.lastWake < int64(time.Second)
		loopServes := c.loopServes()
		if !loopServes {
			c.lastWake = now
		}
		full := true
		ib := c.getInbuf(c.pending)
		c.pending = nil
		reason, ended := "", false
		if c.pause > 0 {
			// Owed by a publish the event loop served (inline.go).
			d := c.pause
			c.pause = 0
			c.srv.clock.Sleep(d)
		}
		if c.ready {
			// Whole packets the event loop left to a runner.
			c.ready = false
			reason, ended = c.consume(&ib)
		}
		for !ended {
			if ib.n == len(ib.b) {
				ib.room(2 * len(ib.b))
			}
			space := len(ib.b) - ib.n
			var n int
			var err error
			lingering := busy && (full || !loopServes) && c.connected && c.kicked.Load() == 0
			if lingering {
				// A busy connection (a device streaming readings) stays
				// awake a little, waiting in the runtime's poller, rather
				// than paying a park and a wake-up per packet.
				n, err = c.linger(ib.b[ib.n:])
			} else {
				n, err = c.readNow(ib.b[ib.n:])
			}
			if errors.Is(err, errWouldBlock) {
				break
			}
			if err != nil {
				reason, ended = c.readError(err), true
				break
			}
			ib.n += n
			full = n == space
			reason, ended = c.consume(&ib)
			if !ended && c.pastDeadline() {
				// Bytes that never complete a packet (one every
				// 150 ms keeps a busy connection lingering, never
				// parked) must not hold the keep-alive off.
				c.pending = ib.release()
				c.expired()
				return
			}
			if n < space && (!lingering || loopServes) {
				// The socket held less than the buffer had room for:
				// it is empty, or was a moment ago. Parking re-arms
				// the poller level-triggered, so bytes that came since
				// wake the connection at once; a read to see EAGAIN
				// would cost a system call per wake-up (half of a
				// connect's reads). A connection the event loop serves
				// stops lingering here too: its stream has thinned.
				break
			}
		}
		c.pending = ib.release()
		c.endLinger()
		if ended {
			c.end(reason)
			return
		}
		if c.kicked.Load() != 0 {
			continue
		}
		c.acks.flush()
		switch c.park() {
		case parkedOK:
			return
		case parkExpired:
			c.expired()
			return
		case parkFailed:
			c.end("connection closed without DISCONNECT")
			return
		}
		// Woken while parking: read again.
	}
}

// Park outcomes.
const (
	parkedOK = iota
	parkWoken
	parkExpired
	parkFailed
)

// deadline is when the connection must have sent its next packet: the
// CONNECT timeout from the accept, then 1.5 × the keep-alive from the last
// packet [MQTT-3.1.2-24]; zero for none.
func (c *conn) deadline() time.Time {
	if !c.connected {
		return time.Unix(0, c.connectBy)
	}
	if c.keepAlive > 0 {
		return c.lastPacket.Add(c.keepAlive * 3 / 2)
	}
	return time.Time{}
}

// pastDeadline says whether the connection's deadline has passed.
func (c *conn) pastDeadline() bool {
	d := c.deadline()
	return !d.IsZero() && time.Now().After(d)
}

// park hands the connection to the poller and the wheel. After parkedOK
// the calling goroutine must not touch the connection again.
func (c *conn) park() int {
	if d := c.deadline(); !d.IsZero() {
		c.loop.wheel.set(c, d)
	}
	if err := c.loop.poller.arm(c); err != nil {
		c.loop.wheel.remove(c)
		return parkFailed
	}
	for {
		s := c.state.Load()
		switch {
		case s == stRunning:
			if c.state.CompareAndSwap(s, stParked) {
				c.srv.stats.parked.Add(1)
				return parkedOK
			}
		case s&flagWake != 0:
			if c.state.CompareAndSwap(s, stRunning) {
				c.loop.wheel.remove(c)
				return parkWoken
			}
		case s&flagExpire != 0:
			if c.state.CompareAndSwap(s, stRunning) {
				return parkExpired
			}
		default:
			return parkFailed
		}
	}
}

// wake starts a goroutine for a parked connection, or records why it was
// woken for the one running it.
func (c *conn) wake(why int) {
	flag := flagWake
	if why == wakeExpired {
		flag = flagExpire
	}
	for {
		s := c.state.Load()
		switch {
		case s == stParked:
			if !c.state.CompareAndSwap(s, stRunning) {
				continue
			}
			c.srv.stats.parked.Add(-1)
			switch why {
			case wakeExpired:
				c.loop.runners.start(c, true) // the wheel has already taken it out
			case wakeReadable:
				c.loop.wheel.remove(c)
				c.serveReadable() // the poller's goroutine (inline.go)
			default:
				c.loop.wheel.remove(c)
				c.loop.runners.start(c, false)
			}
			return
		case s&3 == stRunning:
			if c.state.CompareAndSwap(s, s|flag) {
				return
			}
		default:
			return
		}
	}
}

// expired ends a connection whose deadline passed while it was parked.
func (c *conn) expired() {
	if !c.connected {
		c.end("no CONNECT within the connect timeout")
		return
	}
	c.end(c.readError(os.ErrDeadlineExceeded))
}

// serveBlocking serves a connection that cannot be polled (TLS, WebSocket)
// on one goroutine blocked in Read, holding a pooled buffer.
func (c *conn) serveBlocking() {
	_ = c.nc.SetReadDeadline(time.Unix(0, c.connectBy))
	ib := c.getInbuf(nil)
	defer func() { ib.release() }()
	for {
		if ib.n == len(ib.b) {
			ib.room(2 * len(ib.b))
		}
		n, err := c.nc.Read(ib.b[ib.n:])
		ib.n += n
		if n > 0 {
			wasConnected := c.connected
			if reason, ended := c.consume(&ib); ended {
				c.end(reason)
				return
			}
			if c.connected && (ib.n == 0 || !wasConnected) {
				c.acks.flush()
				if c.keepAlive > 0 {
					// [MQTT-3.1.2-24]: one and a half keep-alive periods.
					_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive * 3 / 2))
				} else {
					_ = c.nc.SetReadDeadline(time.Time{})
				}
				if c.kicked.Load() != 0 {
					// A kick's short read deadline may have been
					// overwritten just now: end here, not at the
					// keep-alive.
					c.end(c.readError(net.ErrClosed))
					return
				}
			}
		}
		if err != nil {
			if !c.connected && errors.Is(err, os.ErrDeadlineExceeded) {
				c.end("no CONNECT within the connect timeout")
				return
			}
			c.end(c.readError(err))
			return
		}
	}
}
