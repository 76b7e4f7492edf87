package mqtt

import (
	"errors"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Serving readable connections on the event loop's goroutine (issue 16:
// CPU per message). In a fan-in each of many devices sends a packet now
// and then: woken on a runner, each packet cost a goroutine hand-off, and
// on two cores often a sleeping thread woken to run it, where Mosquitto's
// one thread handles a whole burst of readable sockets per epoll_wait.
// The poller's loop therefore serves a readable connection itself when the
// work is small and cannot wait: one non-blocking read into a pooled
// buffer, the whole packets in it handled — PUBLISH at QoS 0 or 1 without
// retain while no publish rate limit is set, a bare PUBACK, PINGREQ — their acknowledgements and the
// deliveries they make written with non-blocking writes (what a socket
// does not take goes to its outbox's writer, as on a runner), and the
// connection parked again, all without another goroutine.
//
// Anything that may wait goes to a runner (runners.go), which goes on from
// where the loop stopped: the handshake (not connected yet), any other
// packet (a SUBSCRIBE declares a queue…), a retained or QoS 2 PUBLISH (a
// commit is waited for), a resource alarm, the connection's end (the
// teardown, the will), an expired deadline, a kick, and a cluster node
// (a publish may go to another node). A queue's publish-rate hold, which
// comes after the publish, is owed rather than slept: the runner sleeps it
// before it handles the next packet. A read that filled
// the buffer marks a busy publisher streaming: the runner serves it,
// lingering for more, as before. TLS and WebSocket connections are never
// polled and keep their goroutine.

// serveReadable serves a connection the poller found readable, just taken
// from parked to running (wake).
func (c *conn) serveReadable() {
	if !c.loopServes() || c.kicked.Load() != 0 {
		c.loop.runners.start(c, false)
		return
	}
	ib := c.getInbuf(c.pending)
	c.pending = nil
	space := len(ib.b) - ib.n
	n, err := c.readNow(ib.b[ib.n:])
	var reason string
	ended, fresh := false, false
	switch {
	case errors.Is(err, errWouldBlock):
	case err != nil:
		reason, ended = c.readError(err), true
	default:
		ib.n += n
		c.inline = true
		before := c.lastPacket
		reason, ended = c.consume(&ib)
		c.inline = false
		// A whole packet just came: the deadline, counted from it, has
		// not passed (no clock read needed).
		fresh = !c.lastPacket.Equal(before)
	}
	c.pending = ib.release()
	handoff := c.handoff
	c.handoff = false
	switch {
	case ended:
		c.loop.runners.startEnd(c, reason)
		return
	case !handoff && !fresh && c.pastDeadline():
		// A whole packet just read (fresh) moved the deadline. A packet
		// left to a runner came whole too (consume stops only at a
		// whole one): the client sent in time, and the runner handles it
		// and moves lastPacket. Only a read that completed no packet, or
		// a trickle that never completes one, lets the deadline stand
		// (review10 F4: a SUBSCRIBE arriving just past 1.5 × the
		// keep-alive, before the wheel's tick, was dropped unread).
		c.loop.runners.start(c, true)
		return
	case n == space:
		// A publisher streaming: a runner reads on, lingering (run).
		c.lastWake = time.Now().UnixNano()
		c.loop.poller.disarm(c)
		handoff = true
	}
	if handoff || c.pause > 0 || c.kicked.Load() != 0 {
		c.ready = len(c.pending) > 0
		c.loop.runners.start(c, false)
		return
	}
	c.acks.flush()
	switch c.park() {
	case parkedOK:
	case parkExpired:
		c.loop.runners.start(c, true)
	case parkFailed:
		c.loop.runners.startEnd(c, "connection closed without DISCONNECT")
	default: // woken while parking
		c.loop.runners.start(c, false)
	}
}

// loopServes says whether the event loop serves the connection's packets
// when it is readable: once it is connected, on a single node.
func (c *conn) loopServes() bool { return c.connected && c.srv.cfg.Cluster == nil }

// inlineStop says whether consume, serving the connection on the event
// loop, must leave this packet and the rest to a runner.
func (c *conn) inlineStop(first byte, body []byte) bool {
	if c.pause > 0 {
		return true
	}
	switch {
	case first>>4 == wire.PUBLISH:
		qos := first >> 1 & 3
		// A publish over a rate limit waits before it is routed: on a
		// runner, whenever limits are set. A publisher whose messages
		// reached a durable queue's log goes to runners from then on:
		// appending waits for the log's lock, which its committer holds
		// across write and fsync, and every connection the loop serves
		// would wait with it (the first such publish waits once).
		return qos > 1 || first&1 != 0 || c.routesToDisk || c.alarmed() || c.srv.broker.Limits().Active()
	case first == wire.PUBACK<<4 && len(body) == 2:
		// A persistent session's PUBACK settles a message its durable
		// queue logged (a store ack, maybe a read back from disk for the
		// next delivery): on a runner, for the same reason.
		return c.persistent
	case first == wire.PINGREQ<<4:
		return false
	}
	return true
}

// alarmed says whether a resource alarm is on: publishes then wait
// (waitWhileBlocked), on a runner.
func (c *conn) alarmed() bool {
	for _, a := range c.srv.broker.Alarms() {
		if a.Active() {
			return true
		}
	}
	return false
}

// stall makes the publisher wait d after a publish (a queue's publish-rate
// hold, or a rate limit set while the loop served it): now on a runner;
// when the event loop serves it, a runner waits before the next packet
// (serveReadable hands it over).
func (c *conn) stall(d time.Duration) {
	if c.inline {
		c.pause += d
		return
	}
	c.acks.flush()
	c.flushBatch()
	c.srv.clock.Sleep(d) // not reading meanwhile: TCP slows the publisher down
}
