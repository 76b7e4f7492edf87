package amqp

import (
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
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// connection is one client connection. Fields without a comment are owned
// by the reader goroutine.
type connection struct {
	id   uint64
	srv  *Server
	nc   net.Conn
	sock *sockReader
	br   *amqp091.AdaptiveReader
	fr   *amqp091.FrameReader
	out  *outbox.Outbox
	log  *slog.Logger
	dec  amqp091.Decoder // for the hot methods; its string cache spares allocations

	frameMax   uint32
	channelMax uint16
	heartbeat  time.Duration
	user       auth.User
	vhost      *broker.VHost
	acc        connAccess // access.go: the user's permissions in vhost
	accLoaded  bool
	release    func() // uncounts the connection (limits) and leaves the vhost's closers
	caps       clientCaps

	channels  map[uint16]*channel
	chMu      sync.Mutex // guards chList for goroutines other than the reader
	chList    []*channel
	confirmQ  []*channel // channels with confirms to flush
	closing   bool       // we sent connection.close and await close-ok
	opened    bool       // the handshake is done: heartbeats govern the read deadline
	finished  bool
	forced    atomic.Bool
	done      chan struct{}
	writerOut chan struct{}

	alarmWake     chan struct{} // the memory alarm changed
	published     atomic.Bool   // the client has published: alarms block it
	blockNotified atomic.Bool   // connection.blocked sent and not yet undone
	unsubs        []func()

	// For the management API's snapshots (snapshot.go): set by the
	// handshake, then published through st.info.
	clientProps amqp091.Table
	mechanism   string
	st          connStats
}

type clientCaps struct {
	cancelNotify, blocked, authFailureClose bool
	specQos                                 bool // basic.qos global=false limits the channel (see specQosClient)
}

func newConnection(s *Server, nc net.Conn) *connection {
	c := &connection{
		id:        s.nextConnID.Add(1),
		srv:       s,
		nc:        nc,
		br:        nil, // set below: the reader arms the heartbeat deadline per socket read
		out:       outbox.New(s.cfg.OutboxLimit),
		channels:  map[uint16]*channel{},
		done:      make(chan struct{}),
		writerOut: make(chan struct{}),
		alarmWake: make(chan struct{}, 1),
	}
	c.sock = &sockReader{c: c}
	c.br = amqp091.NewAdaptiveReader(c.sock, 512, 64<<10)
	c.log = s.log.With("conn", c.id, "peer", nc.RemoteAddr().String())
	return c
}

// serve runs the connection to its end.
func (c *connection) serve() {
	st := &c.srv.stats
	st.connsTotal.Add(1)
	st.connsOpen.Add(1)
	defer st.connsOpen.Add(-1)
	defer func() { _ = c.nc.Close() }()

	if err := c.handshake(); err != nil {
		c.log.Debug("handshake failed", "err", err)
		c.out.CloseAfterFlush()
		c.runWriterUntilDone(time.Second)
		return
	}
	c.opened = true
	c.publishInfo()
	c.log.Info("connection opened", "user", c.user.Name, "vhost", c.vhost.Name())
	go func() {
		defer close(c.writerOut)
		c.out.Run(countingConn{c.nc, &c.st.sendOct}, c.heartbeat, amqp091.AppendHeartbeat, c.done, c.onDrain, func(err error) {
			if err != nil {
				// Unblock the reader; after a requested close the
				// socket stays open for linger, and serve closes it.
				c.log.Debug("write failed", "err", err)
				_ = c.nc.Close()
			}
		})
	}()
	for _, a := range c.srv.broker.Alarms() {
		c.unsubs = append(c.unsubs, a.Subscribe(func(bool) {
			if c.published.Load() {
				c.notifyBlocked(c.blockReason())
			}
			select {
			case c.alarmWake <- struct{}{}:
			default:
			}
		}))
	}
	reason := c.readLoop()
	for _, unsub := range c.unsubs {
		unsub()
	}
	c.teardown()
	c.out.CloseAfterFlush()
	select {
	case <-c.writerOut:
	case <-time.After(2 * time.Second):
	}
	if c.finished {
		c.linger()
	}
	close(c.done)
	c.log.Info("connection closed", "reason", reason)
}

// closeLinger bounds how long a closed connection waits for the client to
// close its socket (RabbitMQ waits too, rather than closing on it).
const closeLinger = 5 * time.Second

// linger reads and discards until the client closes the socket, after the
// close handshake. Closing a socket with unread input makes the kernel reset
// the connection, and the reset can destroy the close-ok before the client
// reads it: amqplib sends connection.close ahead of publishes it still has
// buffered, and then sees EPIPE or ECONNRESET instead of close-ok.
func (c *connection) linger() {
	limit := closeLinger
	if c.forced.Load() {
		limit = time.Second // shutdown should not wait on clients
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(limit))
	_, _ = io.Copy(io.Discard, c.nc)
}

// runWriterUntilDone flushes the outbox during a failed handshake, before
// the writer goroutine exists.
func (c *connection) runWriterUntilDone(limit time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.out.Run(c.nc, 0, nil, c.done, func() {}, func(error) {})
	}()
	select {
	case <-done:
	case <-time.After(limit):
	}
	close(c.done)
}

// readLoop reads and handles frames until the connection ends and says why.
func (c *connection) readLoop() string {
	for !c.finished {
		if c.fr.Buffered() == 0 {
			c.flushConfirms()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			return c.readError(err)
		}
		if c.closing {
			c.handleWhileClosing(f)
			continue
		}
		if err := c.handleFrame(f); err != nil {
			if errors.Is(err, errPeerGone) {
				return err.Error()
			}
			c.fail(err)
		}
	}
	return "closed"
}

func (c *connection) armReadDeadline() {
	switch {
	case !c.opened || c.closing || c.forced.Load():
		// The handshake's, the close's or the shutdown's deadline stands.
	case c.heartbeat > 0:
		// A peer silent for two heartbeat intervals is dead (spec 4.2.7).
		_ = c.nc.SetReadDeadline(time.Now().Add(2 * c.heartbeat))
	default:
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

func (c *connection) readError(err error) string {
	switch {
	case errors.Is(err, amqp091.ErrFrameTooLarge), errors.Is(err, amqp091.ErrFrameEnd):
		c.fail(newError(amqp091.FrameError, nil, "%v", err))
		// Give the client a moment to read the close.
		c.out.CloseAfterFlush()
		return err.Error()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.closing {
			return "no connection.close-ok from client"
		}
		c.log.Warn("missed heartbeats from client, closing", "timeout", 2*c.heartbeat)
		return "missed heartbeats"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		if !c.closing && !c.forced.Load() {
			c.log.Info("client closed the socket without connection.close")
		}
		return "socket closed"
	}
	return err.Error()
}

// fail handles a protocol exception: soft errors close the channel, hard ones
// the connection.
func (c *connection) fail(err error) {
	var ae *amqpError
	if !errors.As(err, &ae) {
		ae = internalError(err, nil)
	}
	c.logCause(ae)
	if !ae.hard {
		if ch := c.channels[ae.channel()]; ch != nil {
			ch.closeWithError(ae)
			return
		}
	}
	c.log.Warn("closing connection on error", "code", ae.code, "text", ae.text)
	c.startClose(ae.code, ae.text, ae.classID, ae.methodID)
}

// logCause logs the internal failure behind an exception, which the client
// is not told. Only a 541 is an internal error the client learns nothing
// of; any other code went with its own text (a 404 "home node … is down or
// inaccessible" while a queue's node is down, an expected condition), so it
// is a warning, not an ERROR claiming a generic reply.
func (c *connection) logCause(ae *amqpError) {
	switch {
	case ae.cause == nil:
	case ae.code == amqp091.InternalError:
		c.log.Error("internal error; the client gets a generic reply", "code", ae.code, "text", ae.text, "err", ae.cause)
	default:
		c.log.Warn("request refused", "code", ae.code, "text", ae.text, "err", ae.cause)
	}
}

// startClose sends connection.close and waits for close-ok (bounded).
func (c *connection) startClose(code uint16, text string, classID, methodID uint16) {
	if c.closing {
		return
	}
	c.closing = true
	c.appendMethod(0, &amqp091.ConnectionClose{ReplyCode: code, ReplyText: text, ClassID: classID, MethodID: methodID})
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
}

// forceClose is called from another goroutine on shutdown.
func (c *connection) forceClose(text string) {
	c.closeFromOutside(amqp091.ConnectionForced, text)
}

// closeFromOutside closes the connection from a goroutine other than the
// reader (shutdown, or the store's committer failing a transaction): the
// reader owns the channel state machines, so only the whole connection can
// be closed from here.
func (c *connection) closeFromOutside(code uint16, text string) {
	c.forced.Store(true)
	c.appendMethod(0, &amqp091.ConnectionClose{ReplyCode: code, ReplyText: text})
	_ = c.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
}

// handleWhileClosing discards everything but the close handshake (spec
// 2.2.4: after sending close, a peer discards frames until close-ok).
func (c *connection) handleWhileClosing(f amqp091.Frame) {
	if f.Type != amqp091.FrameMethod || f.Channel != 0 {
		return
	}
	switch cls, mth := amqp091.MethodIDs(f.Payload); {
	case cls == amqp091.ClassConnection && mth == amqp091.MethodConnectionCloseOk:
		c.finished = true
	case cls == amqp091.ClassConnection && mth == amqp091.MethodConnectionClose: // crossing ours
		c.appendMethod(0, &amqp091.ConnectionCloseOk{})
		c.finished = true
	}
}

func (c *connection) handleFrame(f amqp091.Frame) error {
	switch f.Type {
	case amqp091.FrameHeartbeat:
		if f.Channel != 0 {
			return newError(amqp091.FrameError, nil, "heartbeat frame on channel %d", f.Channel)
		}
		return nil
	case amqp091.FrameMethod:
		if f.Channel == 0 {
			return c.connectionMethod(f.Payload)
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			return c.methodOnFreeChannel(f)
		}
		return ch.handleMethod(f.Payload)
	case amqp091.FrameHeader, amqp091.FrameBody:
		ch := c.channels[f.Channel]
		if ch == nil {
			return newError(amqp091.ChannelError, nil, "expected 'channel.open' on channel %d", f.Channel)
		}
		err := ch.handleContent(f)
		if ae := asAMQPError(err); ae != nil {
			ae.ch = ch.id
		}
		return err
	}
	return newError(amqp091.FrameError, nil, "unknown frame type %d", f.Type)
}

func (c *connection) connectionMethod(payload []byte) error {
	m, err := amqp091.DecodeMethod(payload)
	if err != nil {
		return decodeError(err)
	}
	switch m := m.(type) {
	case *amqp091.ConnectionClose:
		c.log.Debug("client closed connection", "code", m.ReplyCode, "text", m.ReplyText)
		c.appendMethod(0, &amqp091.ConnectionCloseOk{})
		c.finished = true
	case *amqp091.ConnectionCloseOk:
		c.finished = true
	case *amqp091.ConnectionUpdateSecret:
		c.appendMethod(0, &amqp091.ConnectionUpdateSecretOk{})
	case *amqp091.ConnectionBlocked, *amqp091.ConnectionUnblocked:
		// Clients may send these; the server has nothing to do.
	default:
		return newError(amqp091.CommandInvalid, m, "unexpected method %s on channel 0", m.Name())
	}
	return nil
}

// decodeError maps codec errors to the exception the spec asks for.
func decodeError(err error) error {
	var um amqp091.ErrUnknownMethod
	if errors.As(err, &um) {
		return newError(amqp091.CommandInvalid, nil, "unknown method %d.%d", um.ClassID, um.MethodID)
	}
	return newError(amqp091.SyntaxError, nil, "%v", err)
}

// methodOnFreeChannel handles a method on a channel id not in use: it must
// be channel.open, except for the tail of a close handshake. A client whose
// channel was closed by both sides at once may send its close-ok for our
// close before its own close (amqp091-go does: two goroutines); once that
// close-ok has freed the id, the late close gets close-ok, and a stray
// close-ok is dropped, as amqp091-go itself treats a closed channel,
// instead of killing the connection with 504.
func (c *connection) methodOnFreeChannel(f amqp091.Frame) error {
	switch cls, mth := amqp091.MethodIDs(f.Payload); {
	case cls == amqp091.ClassChannel && mth == amqp091.MethodChannelClose:
		c.appendMethod(f.Channel, &amqp091.ChannelCloseOk{})
		return nil
	case cls == amqp091.ClassChannel && mth == amqp091.MethodChannelCloseOk:
		return nil
	}
	return c.openChannel(f)
}

func (c *connection) openChannel(f amqp091.Frame) error {
	cls, mth := amqp091.MethodIDs(f.Payload)
	if cls != amqp091.ClassChannel || mth != amqp091.MethodChannelOpen {
		return newError(amqp091.ChannelError, nil, "expected 'channel.open' on channel %d", f.Channel)
	}
	if f.Channel > c.channelMax {
		return newError(amqp091.NotAllowed, nil, "channel id %d exceeds channel_max %d", f.Channel, c.channelMax)
	}
	if err := c.srv.users.OpenChannel(c.user.Name); err != nil {
		var le *auth.LimitError
		if errors.As(err, &le) {
			return newError(amqp091.NotAllowed, &amqp091.ChannelOpen{}, "%s", limitText(le, c.user.Name, c.vhost.Name()))
		}
		return err
	}
	ch := newChannel(c, f.Channel)
	c.channels[f.Channel] = ch
	c.chMu.Lock()
	c.chList = append(c.chList, ch)
	c.chMu.Unlock()
	c.srv.stats.chansTotal.Add(1)
	c.srv.stats.chansOpen.Add(1)
	c.appendMethod(f.Channel, &amqp091.ChannelOpenOk{})
	return nil
}

// appendMethod queues a method frame on channel.
func (c *connection) appendMethod(channel uint16, m amqp091.Method) {
	c.out.Append(func(buf []byte) []byte { return amqp091.AppendMethodFrame(buf, channel, m) })
}

// removeChannel forgets a channel whose close handshake completed.
func (c *connection) removeChannel(ch *channel) {
	if c.channels[ch.id] == ch {
		delete(c.channels, ch.id)
		c.srv.users.CloseChannel(c.user.Name)
		c.srv.stats.chansOpen.Add(-1)
	}
	c.chMu.Lock()
	for i, x := range c.chList {
		if x == ch {
			c.chList = append(c.chList[:i], c.chList[i+1:]...)
			break
		}
	}
	c.chMu.Unlock()
}

// teardown releases everything the connection holds: unacked messages go
// back to their queues, consumers are cancelled, exclusive queues deleted.
func (c *connection) teardown() {
	for _, ch := range c.channels {
		ch.release()
		c.removeChannel(ch)
	}
	if c.release != nil {
		c.release()
	}
	if c.vhost != nil {
		c.vhost.DeleteExclusive(c.id)
	}
}

// onDrain runs on the writer goroutine after the outbox drained below its
// limit: queues whose deliveries were refused get another chance.
func (c *connection) onDrain() {
	c.chMu.Lock()
	chans := append([]*channel(nil), c.chList...)
	c.chMu.Unlock()
	for _, ch := range chans {
		ch.redispatch()
	}
}

// flushConfirms sends the publisher confirms accumulated while reading a
// batch of frames, one multiple-ack per channel.
func (c *connection) flushConfirms() {
	for _, ch := range c.confirmQ {
		ch.flushConfirms()
	}
	c.confirmQ = c.confirmQ[:0]
}
