package mqtt

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
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
	rd  *wire.Reader
	out *outbox.Outbox
	log *slog.Logger

	v          byte // protocol level
	clientID   string
	user       auth.User
	vhost      *broker.VHost
	keepAlive  time.Duration
	connect    *wire.Connect
	graceful   bool   // the client sent DISCONNECT
	noWill     bool   // …without asking for its will (reason 0x04) [MQTT-3.14.4-3]
	persistent bool   // the session queue is durable
	expiry     uint32 // the session expiry interval in force (3.1.1 persistent: never)
	queue      *broker.Queue
	sub        *subscriber
	shared     map[string]*subscriber // "group\x00filter" → its consumer
	scratch    broker.RouteScratch
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
	nextPID  uint16
	recvMax  int
	closed   bool
	// aliasOut maps topics to the aliases this connection has told the
	// client, up to the client's Topic Alias Maximum (aliasMax).
	aliasOut map[string]uint16
	aliasMax uint16

	kicked   atomic.Uint32 // reason code of a server-side disconnect, 0 if none
	finished chan struct{}
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
	released bool // PUBREL sent (QoS 2)
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, id: s.nextID.Add(1), nc: nc, out: outbox.New(s.cfg.OutboxLimit),
		rd:     wire.NewReader(bufio.NewReaderSize(nc, 4096), int(s.cfg.MaxPacketSize)),
		shared: map[string]*subscriber{}, aliasesIn: map[uint16]string{},
		subs: map[string]subOpts{}, inflight: map[uint16]*outflight{}, finished: make(chan struct{})}
	c.acks.c = c
	c.acks.rel = map[uint16]bool{}
	c.log = s.log.With("peer", nc.RemoteAddr().String())
	return c
}

func (c *conn) send(p wire.Packet) {
	c.out.Append(func(buf []byte) []byte { return p.Append(buf, c.v) })
}

// serve runs the connection to its end.
func (c *conn) serve() {
	st := &c.srv.stats
	st.connsTotal.Add(1)
	st.connsOpen.Add(1)
	defer st.connsOpen.Add(-1)
	defer close(c.finished)
	done := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.out.Run(c.nc, 0, nil, done, c.redispatch, func(error) { _ = c.nc.Close() })
	}()
	defer func() {
		c.out.CloseAfterFlush()
		select {
		case <-writerDone:
		case <-time.After(2 * time.Second):
		}
		close(done)
		_ = c.nc.Close()
	}()

	defer func() {
		if c.release != nil {
			c.release()
		}
	}()
	if err := c.handshake(); err != nil {
		c.log.Debug("MQTT connect refused", "err", err)
		return
	}
	c.log = c.log.With("client_id", c.clientID)
	c.log.Info("MQTT client connected", "version", c.v, "user", c.user.Name, "persistent_session", c.persistent)
	reason := c.readLoop()
	c.teardown()
	c.log.Info("MQTT client disconnected", "reason", reason)
}

// kick disconnects the client from another goroutine (takeover, shutdown).
func (c *conn) kick(reason byte) {
	if !c.kicked.CompareAndSwap(0, uint32(reason)) {
		return
	}
	if c.v == wire.V5 {
		c.send(&wire.Disconnect{ReasonCode: reason})
	}
	c.out.CloseAfterFlush()
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Second))
}

func (c *conn) readLoop() string {
	for {
		if c.rd.Buffered() == 0 {
			c.acks.flush()
			if c.keepAlive > 0 {
				// [MQTT-3.1.2-24]: one and a half keep-alive periods.
				_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive * 3 / 2))
			}
		}
		p, err := c.rd.ReadPacket(c.v)
		if err != nil {
			return c.readError(err)
		}
		if err := c.handle(p); err != nil {
			return c.protocolError(err)
		}
		if c.graceful {
			return "DISCONNECT"
		}
	}
}

func (c *conn) readError(err error) string {
	if r := c.kicked.Load(); r != 0 {
		return "disconnected by the server"
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
		c.log.Warn("MQTT protocol error, disconnecting", "code", we.Code, "err", we.Msg)
		reason = we.Msg
	} else {
		c.log.Error("MQTT internal error, disconnecting; the client gets a generic reason", "err", err)
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

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "tern-" + hex.EncodeToString(b[:])
}
