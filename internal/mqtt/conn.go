package mqtt

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/outbox"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// conn is one MQTT client connection and its session. Fields without a
// comment are owned by the reader goroutine.
type conn struct {
	srv *Server
	id  uint64
	nc  net.Conn
	out *outbox.Outbox

	// I/O (io.go). raw is nil for a connection that is not polled (TLS,
	// WebSocket): it keeps a goroutine.
	raw         syscall.RawConn
	loop        *eventLoop
	state       atomic.Uint32 // stRunning, stParked, stDone, with flags
	polled      bool          // registered with the poller (guarded by the poller's mu)
	armedET     bool          // registered edge-triggered, kept between wake-ups (poller.arm)
	connected   bool          // CONNACK sent
	pending     []byte        // an incomplete packet's bytes, kept while parked
	connectBy   int64         // UnixNano: the CONNECT timeout's deadline
	lastPacket  time.Time     // when the last whole packet came
	lastWake    int64         // UnixNano of the last wake-up (run)
	lingerUntil time.Time     // the read deadline linger set; zero: none
	hold        *gateHold     // set by the runner of a gated run (runners.loop): its handshake place
	// inline.go: inline is set while the event loop's goroutine serves
	// the connection; handoff, that consume stopped at a packet the loop
	// must not handle; ready, that pending holds whole packets for the
	// runner to handle before it reads; pause, a wait (rate limit) the
	// runner owes before it goes on; routesToDisk, that a publish of this
	// connection reached a queue that logs it to disk (the event loop
	// must not wait on a queue log's lock or fsync: its later publishes
	// go to runners).
	inline, handoff, ready, routesToDisk bool
	pause                                time.Duration
	// The timing wheel's links (guarded by the wheel's mu).
	wprev, wnext *conn
	wslot        int // slot+1; 0: not in the wheel
	wtick        int64

	v          byte          // protocol level
	vShared    atomic.Uint32 // v, for other goroutines (kick): set once the CONNECT is read
	clientID   string
	user       auth.User
	vhost      *broker.VHost
	keepAlive  time.Duration
	cleanStart bool          // the CONNECT's Clean Start (Clean Session in 3.1.1)
	will       *wire.Publish // the CONNECT's will, if it had one; Props carries its delay
	graceful   bool          // the client sent DISCONNECT
	noWill     bool          // …without asking for its will (reason 0x04) [MQTT-3.14.4-3]
	persistent bool          // the session queue is durable
	expiry     uint32        // the session expiry interval in force (3.1.1 persistent: never)
	queue      *broker.Queue
	sub        *subscriber
	shared     map[string]*subscriber // "group\x00filter" → its consumer
	scratch    *broker.RouteScratch   // made by the first publish
	batch      *writeBatch            // batch.go; made by the first publish
	aliasesIn  map[uint16]string
	acks       ackQueue
	maxOut     uint32 // the client's maximum packet size; 0: none
	// problemInfo is the client's Request Problem Information: false
	// means no reason strings outside PUBLISH, CONNACK and DISCONNECT.
	problemInfo bool
	acc         connAccess // access.go: the user's permissions
	release     func()     // access.go: uncounts the connection, leaves the vhost's closers

	mu       sync.Mutex // guards the fields below (shared with delivering queues)
	subs     map[string]subOpts
	inflight map[uint16]*outflight
	// sess is a persistent session's state kept between connections
	// (inflight.go): its PUBRECs received and inbound QoS 2 packet ids.
	// nil for a session that ends with the connection.
	sess    *sessionState
	nextPID uint16
	recvMax int
	closed  bool
	// acked: the CONNACK is in the outbox; a kick's DISCONNECT may follow.
	acked bool
	// stopped: kicked after the CONNACK; the kick's DISCONNECT (5.0) is
	// in the outbox, sent once (by kickAs or the handshake). Nothing may
	// follow it [MQTT-3.14.4-1]: a kicked connection refuses deliveries
	// (TryDeliver), left in the queue for the connection that took the
	// session over.
	stopped bool
	// roomWanted: a delivery was refused for want of an in-flight slot
	// or its packet id; the next PUBACK/PUBCOMP redispatches.
	roomWanted bool
	// aliasOut maps topics to the aliases this connection has told the
	// client, up to the client's Topic Alias Maximum (aliasMax).
	aliasOut map[string]uint16
	aliasMax uint16

	kicked   atomic.Uint32 // reason code of a server-side disconnect, 0 if none
	finished chan struct{}
	// waitingOn (guarded by srv.mu) is the older connection of the
	// client id this one's handshake waits to finish (claim), nil once
	// the wait is over: a CONNECT on another node taking the id over
	// from this handshake waits for that one, which still holds the
	// session (TakenOver).
	waitingOn *conn

	// In a cluster (cluster.go), guarded by srv.mu: admitted is set once
	// the other nodes gave up the client id (the handshake then opens the
	// session); remote once another node's CONNECT took it over.
	admitted bool
	remote   byte
	// Guarded by srv.mu (server.go): settled once the connection decided
	// what becomes of its session at its end (or was refused), after
	// which it never holds the client id again; sessionLeft when it left
	// the session alone because another connection held the id.
	settled, sessionLeft bool
}

// subOpts are a subscription's options.
type subOpts struct {
	qos               byte
	noLocal           bool
	retainAsPublished bool
	subID             uint32
}

// outflight is a QoS 1/2 delivery awaiting the client's acknowledgement.
type outflight struct {
	d        broker.Delivery
	stored   bool // d is a queue delivery (not a retained message sent directly)
	qos      byte
	released bool // PUBREC received, PUBREL sent or due (QoS 2)
	// recorded: the session state holds its PUBREC (a session queue
	// message, d.Seq); PUBCOMP removes it (sessions.complete).
	recorded bool
}

func newConn(s *Server, nc net.Conn) *conn {
	// The maps are made on first use (put): an idle connection has none.
	c := &conn{srv: s, id: s.nextID.Add(1), nc: nc, finished: make(chan struct{})}
	c.out = outbox.NewOnDemand(s.cfg.OutboxLimit, nc, c.redispatch, func(error) {
		_ = nc.Close()
		c.wake(wakeKick) // a parked connection learns of the close by reading
	})
	c.out.TryWrite(c.writeNow) // a polled socket is written without a scheduler hand-off
	c.acks.c = c
	c.connectBy = time.Now().Add(s.cfg.ConnectTimeout).UnixNano()
	return c
}

// logger is the connection's logger. It is made when needed rather than
// kept: an idle connection should not hold one.
func (c *conn) logger() *slog.Logger {
	if c.clientID == "" {
		return c.srv.log.With("peer", c.nc.RemoteAddr().String())
	}
	return c.srv.log.With("peer", c.nc.RemoteAddr().String(), "client_id", c.clientID)
}

func (c *conn) send(p wire.Packet) {
	c.out.Append(func(buf []byte) []byte { return p.Append(buf, c.v) })
}

// start serves a new connection: parked on the event loop when it is a
// plain TCP socket and the loop runs, else on a goroutine of its own.
func (c *conn) start(loop *eventLoop) {
	st := &c.srv.stats
	st.connsTotal.Add(1)
	st.connsOpen.Add(1)
	if loop != nil {
		if raw := pollRaw(c.nc); raw != nil {
			// Read first, park after: a client sends its CONNECT with
			// the connect, so in a storm (accepts lagging) it is usually
			// there already, and the connection is registered with the
			// poller once, after the handshake, instead of registered,
			// woken and re-armed. When nothing is there yet, run parks
			// it after one read.
			c.raw, c.loop = raw, loop
			loop.runners.start(c, false)
			return
		}
	}
	go c.serveBlocking()
}

// end finishes the connection on the goroutine serving it: the session's
// teardown (will included) when it had connected, then the socket.
func (c *conn) end(reason string) {
	if c.connected {
		c.teardown()
		if ok, unlogged := c.srv.disconnectLog.allow(time.Now()); ok {
			c.srv.log.Info("MQTT client disconnected", "peer", c.nc.RemoteAddr().String(), "client_id", c.clientID,
				"reason", reason, "unlogged", unlogged)
		}
	} else {
		c.logger().Debug("MQTT connection closed before CONNACK", "reason", reason)
	}
	c.out.CloseAndWait(2 * time.Second)
	_ = c.nc.Close()
	if c.release != nil {
		c.release() // the user's and the vhost's connection counts (limits)
		c.release = nil
	}
	if c.loop != nil {
		c.loop.wheel.remove(c)
		c.loop.poller.forget(c)
	}
	c.pending = nil
	c.state.Store(stDone)
	c.srv.stats.connsOpen.Add(-1)
	close(c.finished)
	c.srv.conns.Done(c)
}

// kick disconnects the client from another goroutine (takeover, shutdown).
func (c *conn) kick(reason byte) { c.kickAs(uint32(reason), reason) }

// kickAs is kick with a logged reason (kickReason) other than the reason
// code the 5.0 client gets. It reports whether this call ended the
// connection (false: something else did first).
func (c *conn) kickAs(logged uint32, reason byte) bool {
	if !c.kicked.CompareAndSwap(0, logged) {
		return false
	}
	if c.vShared.Load() == uint32(wire.V5) {
		// Nothing but CONNACK may go before CONNACK [MQTT-3.2.0-2]: a
		// connection kicked in its handshake gets its DISCONNECT after
		// the CONNACK (handshake), or none if it stops before it; one
		// the handshake already stopped has its DISCONNECT. (3.1.1 has
		// no DISCONNECT to send: c.mu is not taken, as publishFailed
		// kicks with the ack queue's lock held.)
		c.mu.Lock()
		if c.acked && !c.stopped {
			c.stopped = true
			c.send(&wire.Disconnect{ReasonCode: reason})
		}
		c.mu.Unlock()
	}
	c.out.CloseAfterFlush()
	if c.raw == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
	}
	c.wake(wakeKick)
	return true
}

func (c *conn) readError(err error) string {
	if r := c.kicked.Load(); r != 0 {
		return kickReason(r)
	}
	var we *wire.Error
	if errors.As(err, &we) {
		return c.protocolError(we)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.v == wire.V5 {
			c.send(&wire.Disconnect{ReasonCode: wire.KeepAliveTimeout})
		}
		return "keep-alive timeout"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return "connection closed without DISCONNECT"
	}
	return err.Error()
}

// kickPublishFailed marks a 3.1.1 connection closed because a QoS 1/2
// publish could not be taken (publish.go): no reason code goes to the
// client, so it is above the byte range.
const kickPublishFailed = 0x100

// Logged reasons of a disconnect because the session queue's consumer
// was cancelled (subscriber.Cancelled): the reason code sent is the low
// byte.
const (
	kickQueueDeleted = 0x200 | uint32(administrativeAction)
	kickQueueLost    = 0x300 | uint32(wire.UnspecifiedError)
)

// kickReason is the logged reason of a disconnect the server made.
func kickReason(r uint32) string {
	switch r {
	case uint32(wire.SessionTakenOver):
		return "session taken over by a newer connection of the client id"
	case uint32(wire.ServerShuttingDown):
		return "server shutting down"
	case uint32(administrativeAction):
		return "disconnected by the server: administrative action (closed through the API, or its vhost or user deleted)"
	case kickQueueDeleted:
		return "disconnected by the server: the session's queue was deleted"
	case kickQueueLost:
		return "disconnected by the server: the session's queue stopped delivering to it (in a cluster: the node holding it restarted or was unreachable); the client may reconnect"
	case kickPublishFailed:
		return "disconnected by the server: a QoS 1/2 publish could not be taken (3.1.1 has no negative acknowledgement; the error is logged where it happened)"
	}
	return "disconnected by the server"
}

// internalReason is the reason string of a failure inside the broker: the
// client learns that the server failed (0x80 Unspecified error, "the Server
// does not wish to reveal the reason"), the log learns what failed.
const internalReason = "internal error"

// protocolError ends the connection over bad input: DISCONNECT with the
// reason code for 5.0, a plain close for 3.1.1 [MQTT-4.13.1-1]. An error
// that is not a *wire.Error failed inside the broker: its text (paths,
// package prefixes) is logged, never sent.
func (c *conn) protocolError(err error) string {
	var we *wire.Error
	var reason string
	if errors.As(err, &we) {
		c.logger().Warn("MQTT protocol error, disconnecting", "code", we.Code, "err", we.Msg)
		reason = we.Msg
	} else {
		c.logger().Error("MQTT internal error, disconnecting; the client gets a generic reason", "err", err)
		we = &wire.Error{Code: wire.UnspecifiedError, Msg: internalReason}
		reason = err.Error()
	}
	if c.v == wire.V5 {
		d := &wire.Disconnect{ReasonCode: we.Code}
		d.Props.ReasonString = we.Msg
		d.Props.Set(wire.PropReasonString)
		c.send(d)
	}
	return reason
}

func (c *conn) handle(p wire.Packet) error {
	switch p := p.(type) {
	case *wire.Publish:
		return c.publish(p)
	case *wire.Ack:
		return c.ack(p)
	case *wire.Subscribe:
		return c.subscribe(p)
	case *wire.Unsubscribe:
		return c.unsubscribe(p)
	case *wire.Pingreq:
		c.send(&wire.Pingresp{})
		return nil
	case *wire.Disconnect:
		if c.v == wire.V5 && p.Props.Has(wire.PropSessionExpiry) {
			if c.expiry == 0 && p.Props.SessionExpiry != 0 {
				// [MQTT-3.14.2-2]: not a valid DISCONNECT; the will goes.
				return &wire.Error{Code: wire.ProtocolError, Msg: "session expiry on DISCONNECT after none on CONNECT"}
			}
			c.expiry = p.Props.SessionExpiry // §3.14.2.2.2
		}
		c.graceful = true
		c.noWill = p.ReasonCode != wire.DisconnectWithWill
		return nil
	case *wire.Connect:
		return &wire.Error{Code: wire.ProtocolError, Msg: "second CONNECT"} // [MQTT-3.1.0-2]
	}
	return &wire.Error{Code: wire.ProtocolError, Msg: "unexpected packet from a client"}
}

// put sets m[k] = v, making the map first if it is nil.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tern-" + hex.EncodeToString(b[:])
}
