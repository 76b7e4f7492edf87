package amqp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// handshake runs protocol negotiation, authentication, tuning and
// connection.open (spec 2.2.4 and 4.2.2).
func (c *connection) handshake() error {
	cfg := &c.srv.cfg
	_ = c.nc.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()

	var hdr [8]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return fmt.Errorf("reading protocol header: %w", err)
	}
	if hdr != amqp091.ProtocolHeader {
		// Spec 4.2.2: answer a wrong header with the one we accept, then
		// close the socket.
		c.out.Write(amqp091.ProtocolHeader[:])
		return fmt.Errorf("unsupported protocol header %q", hdr[:])
	}
	c.fr = amqp091.NewFrameReader(c.br, cfg.FrameMax)

	c.sendDirect(&amqp091.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: amqp091.Table{
			"product":      "Tern",
			"version":      cfg.Version,
			"platform":     "Go " + runtime.Version(),
			"copyright":    "The Tern authors",
			"information":  "Licensed under the Apache License 2.0",
			"cluster_name": cfg.ClusterName,
			"capabilities": amqp091.Table{
				"publisher_confirms":           true,
				"exchange_exchange_bindings":   true,
				"basic.nack":                   true,
				"consumer_cancel_notify":       true,
				"connection.blocked":           true,
				"consumer_priorities":          true,
				"authentication_failure_close": true,
				"per_consumer_qos":             true,
				"direct_reply_to":              true,
			},
		},
		Mechanisms: c.mechanisms(), // external.go
		Locales:    "en_US",
	})

	startOk := &amqp091.ConnectionStartOk{}
	if err := c.expect(startOk); err != nil {
		return err
	}
	if caps, ok := startOk.ClientProperties["capabilities"].(amqp091.Table); ok {
		c.caps.cancelNotify, _ = caps["consumer_cancel_notify"].(bool)
		c.caps.blocked, _ = caps["connection.blocked"].(bool)
		c.caps.authFailureClose, _ = caps["authentication_failure_close"].(bool)
	}
	c.caps.specQos = specQosClient(startOk.ClientProperties)
	c.clientProps, c.mechanism = startOk.ClientProperties, startOk.Mechanism
	u, err := c.login(startOk)
	if err != nil {
		return err
	}
	c.user = u

	heartbeat := uint16(cfg.Heartbeat / time.Second)
	c.sendDirect(&amqp091.ConnectionTune{ChannelMax: cfg.ChannelMax, FrameMax: cfg.FrameMax, Heartbeat: heartbeat})
	tuneOk := &amqp091.ConnectionTuneOk{}
	if err := c.expect(tuneOk); err != nil {
		return err
	}
	// Spec 4.2.3: the client may lower but not raise the limits; 0 means
	// "no limit" and leaves ours.
	switch {
	case tuneOk.FrameMax != 0 && tuneOk.FrameMax < amqp091.FrameMinSize:
		return c.closeHandshake(amqp091.NotAllowed, tuneOk, "frame_max=%d < %d min size", tuneOk.FrameMax, amqp091.FrameMinSize)
	case tuneOk.FrameMax > cfg.FrameMax:
		return c.closeHandshake(amqp091.NotAllowed, tuneOk, "frame_max=%d > %d max size", tuneOk.FrameMax, cfg.FrameMax)
	case tuneOk.ChannelMax > cfg.ChannelMax:
		return c.closeHandshake(amqp091.NotAllowed, tuneOk, "channel_max=%d > %d max", tuneOk.ChannelMax, cfg.ChannelMax)
	}
	c.frameMax = cfg.FrameMax
	if tuneOk.FrameMax != 0 {
		c.frameMax = tuneOk.FrameMax
	}
	c.fr.FrameMax = c.frameMax
	c.channelMax = cfg.ChannelMax
	if tuneOk.ChannelMax != 0 {
		c.channelMax = tuneOk.ChannelMax
	}
	c.heartbeat = time.Duration(tuneOk.Heartbeat) * time.Second

	open := &amqp091.ConnectionOpen{}
	if err := c.expect(open); err != nil {
		return err
	}
	v := c.srv.broker.VHost(open.VirtualHost)
	if v == nil {
		return c.closeHandshake(amqp091.NotAllowed, open, "vhost %s not found", open.VirtualHost)
	}
	if !c.srv.users.CanAccess(u.Name, open.VirtualHost) {
		return c.closeHandshake(amqp091.NotAllowed, open, "access to vhost '%s' refused for user '%s'", open.VirtualHost, u.Name)
	}
	release, err := c.srv.users.OpenConnection(u.Name, open.VirtualHost)
	if err != nil {
		var le *auth.LimitError
		if errors.As(err, &le) {
			return c.closeHandshake(amqp091.NotAllowed, open, "%s", limitText(le, u.Name, open.VirtualHost))
		}
		return err
	}
	remove, ok := v.OnDelete(func() {
		c.closeFromOutside(amqp091.ConnectionForced, "CONNECTION_FORCED - vhost '"+open.VirtualHost+"' is deleted")
	})
	if !ok {
		release()
		return c.closeHandshake(amqp091.NotAllowed, open, "vhost %s not found", open.VirtualHost)
	}
	removeUser := c.srv.broker.OnUserDeleted(u.Name, func() {
		c.closeFromOutside(amqp091.ConnectionForced, "CONNECTION_FORCED - user '"+u.Name+"' was deleted")
	})
	c.release = func() { remove(); removeUser(); release() }
	c.vhost = v
	c.sendDirect(&amqp091.ConnectionOpenOk{})
	return nil
}

// sendDirect writes a method during the handshake, before the writer runs.
func (c *connection) sendDirect(m amqp091.Method) {
	buf := amqp091.AppendMethodFrame(nil, 0, m)
	_, _ = c.nc.Write(buf)
}

// expect reads the next frame and decodes it into m, which it must be.
func (c *connection) expect(m amqp091.Method) error {
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", m.Name(), err)
		}
		if f.Type == amqp091.FrameHeartbeat {
			continue
		}
		if f.Type != amqp091.FrameMethod || f.Channel != 0 {
			return c.closeHandshake(amqp091.UnexpectedFrame, nil, "expected %s, got frame type %d on channel %d", m.Name(), f.Type, f.Channel)
		}
		ok, err := amqp091.DecodeMethodInto(f.Payload, m)
		if err != nil {
			return c.closeHandshake(amqp091.SyntaxError, m, "%v", err)
		}
		if !ok {
			cls, mth := amqp091.MethodIDs(f.Payload)
			if cls == amqp091.ClassConnection && mth == amqp091.MethodConnectionClose { // during the handshake
				c.sendDirect(&amqp091.ConnectionCloseOk{})
				return errors.New("client closed during handshake")
			}
			return c.closeHandshake(amqp091.CommandInvalid, nil, "expected %s, got method %d.%d", m.Name(), cls, mth)
		}
		return nil
	}
}

// closeHandshake sends connection.close during the handshake and fails it.
func (c *connection) closeHandshake(code uint16, m amqp091.Method, format string, args ...any) error {
	e := newError(code, m, format, args...)
	c.sendDirect(&amqp091.ConnectionClose{ReplyCode: e.code, ReplyText: e.text, ClassID: e.classID, MethodID: e.methodID})
	return e
}

// refuse ends a failed login: with connection.close 403 when the client
// supports authentication_failure_close, else by closing the socket, as
// RabbitMQ does.
func (c *connection) refuse(m amqp091.Method, text string) error {
	e := newError(amqp091.AccessRefused, m, "%s", text)
	if c.caps.authFailureClose {
		c.sendDirect(&amqp091.ConnectionClose{ReplyCode: e.code, ReplyText: e.text, ClassID: e.classID, MethodID: e.methodID})
	}
	return e
}

// saslCredentials decodes a PLAIN or AMQPLAIN response.
func saslCredentials(mechanism, response string) (user, pass string, err error) {
	switch mechanism {
	case "PLAIN":
		// RFC 4616: [authzid] NUL authcid NUL passwd
		parts := bytes.Split([]byte(response), []byte{0})
		if len(parts) != 3 {
			return "", "", errors.New("malformed PLAIN response")
		}
		return string(parts[1]), string(parts[2]), nil
	case "AMQPLAIN":
		// A field table without its length prefix: LOGIN and PASSWORD.
		buf := make([]byte, 4+len(response))
		buf[0], buf[1], buf[2], buf[3] = byte(len(response)>>24), byte(len(response)>>16), byte(len(response)>>8), byte(len(response))
		copy(buf[4:], response)
		d := amqp091.NewDecoder(buf)
		t := d.Table()
		if d.Err() != nil {
			return "", "", errors.New("malformed AMQPLAIN response")
		}
		user, _ = t["LOGIN"].(string)
		pass, _ = t["PASSWORD"].(string)
		return user, pass, nil
	}
	return "", "", fmt.Errorf("unsupported authentication mechanism '%s'", mechanism)
}
