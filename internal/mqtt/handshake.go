package mqtt

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// handshake takes the first packet (p, or the error decoding it), which
// must be CONNECT, authenticates, takes over an older connection of the
// same client id, opens the session and answers CONNACK.
func (c *conn) handshake(p wire.Packet, err error) error {
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.UnsupportedProtocol {
			// [MQTT-3.1.2-2]: answer with the code, then close.
			c.v = wire.V311
			c.send(&wire.Connack{ReasonCode: wire.UnsupportedProtocol})
		}
		return err
	}
	cn, ok := p.(*wire.Connect)
	if !ok {
		return fmt.Errorf("first packet is type %d, not CONNECT", p.Type()) // [MQTT-3.1.0-1]
	}
	// Only what outlives the handshake is kept, not the whole CONNECT.
	c.v, c.cleanStart = cn.Level, cn.CleanStart
	if cn.Will {
		c.will = &wire.Publish{QoS: cn.WillQoS, Retain: cn.WillRetain, Topic: cn.WillTopic, Payload: cn.WillPayload, Props: cn.WillProps}
	}
	if c.v == wire.V31 {
		c.v = wire.V311 // 3.1 and 3.1.1 share their wire format for what follows
	}
	c.vShared.Store(uint32(c.v))
	refuse := func(code byte, why string) error {
		c.send(&wire.Connack{ReasonCode: code})
		return errors.New(why)
	}

	if c.v == wire.V5 && cn.Props.Has(wire.PropAuthMethod) {
		// Tern has no enhanced authentication method, so it must refuse
		// any CONNECT naming one [MQTT-4.12.0-1], as Mosquitto does.
		return refuse(wire.BadAuthMethod, "unsupported authentication method "+cn.Props.AuthMethod)
	}
	user, err := c.authenticate(cn)
	if err != nil {
		c.logger().Warn("MQTT login refused", "user", cn.Username, "err", err)
		code := wire.BadUserNameOrPassword
		if !cn.HasUsername {
			// No credentials to be wrong: the client is not authorised.
			code = wire.NotAuthorized
		}
		return refuse(code, err.Error())
	}
	c.user = user
	vh := c.srv.broker.VHost(c.srv.cfg.VHost)
	if vh == nil || !c.srv.users.CanAccess(user.Name, c.srv.cfg.VHost) {
		return refuse(wire.NotAuthorized, "no access to the MQTT vhost")
	}
	c.vhost = vh
	if code, err := c.admit(); err != nil {
		return refuse(code, err.Error())
	}

	c.clientID = cn.ClientID
	assigned := false
	if c.clientID == "" {
		if c.v != wire.V5 && !cn.CleanStart {
			return refuse(wire.ClientIDNotValid, "empty client id with a persistent session") // [MQTT-3.1.3-8] (3.1.1)
		}
		c.clientID, assigned = randomID(), true
	}
	if c.will != nil && !c.allowed(auth.Write, c.will.Topic) {
		// As RabbitMQ checks a will's topic before sending it, but at
		// CONNECT, where the client learns of it: a will
		// that could never be published is refused with the session.
		c.logger().Info("MQTT will refused", "user", user.Name, "topic", c.will.Topic)
		return refuse(wire.NotAuthorized, "no write permission for the will's topic "+c.will.Topic)
	}
	keepAlive, serverKeepAlive := cn.KeepAlive, false
	if limit := c.srv.cfg.MaxKeepAlive; limit > 0 && (keepAlive == 0 || keepAlive > limit) {
		if c.v != wire.V5 {
			// 3.1.1 cannot tell the client another value; refuse it, as
			// Mosquitto does, rather than drop it later without warning.
			return refuse(wire.ClientIDNotValid, fmt.Sprintf("keep-alive %ds beyond the maximum %ds", keepAlive, limit))
		}
		keepAlive, serverKeepAlive = limit, true
	}
	c.keepAlive = time.Duration(keepAlive) * time.Second
	if keepAlive == 0 {
		// Nothing of MQTT's notices a dead peer of a client without a
		// keep-alive: TCP's does, as it did for every connection before
		// the listener stopped setting it at accept (Go's defaults: 15 s
		// idle, 15 s between probes, 9 probes).
		if tc, ok := c.nc.(interface {
			SetKeepAliveConfig(net.KeepAliveConfig) error
		}); ok {
			_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true}) // *net.TCPConn, *sockConn
		}
	}
	c.recvMax = c.srv.cfg.InflightWindow
	if c.v == wire.V5 {
		if cn.Props.Has(wire.PropReceiveMaximum) {
			c.recvMax = int(cn.Props.ReceiveMaximum)
		} else {
			c.recvMax = 65535
		}
		c.maxOut = cn.Props.MaximumPacketSize
		c.aliasMax = cn.Props.TopicAliasMaximum // 0 or absent: no aliases [MQTT-3.3.2-12]
		c.problemInfo = !cn.Props.Has(wire.PropRequestProblemInfo) || cn.Props.RequestProblemInfo != 0
	}
	if c.v == wire.V5 {
		c.expiry = cn.Props.SessionExpiry
		c.persistent = c.expiry > 0
	} else if c.persistent = !cn.CleanStart; c.persistent {
		c.expiry = neverExpires
	}

	// The takeover may wait (on an older connection here, on the other
	// nodes): past a grace the handshake's place goes to the next
	// (handshakes.go).
	old := c.srv.claim(c)
	cl := c.srv.cfg.Cluster
	y := c.yieldGate(old != nil || cl != nil)
	refused, err := c.takeOver(old, cl)
	y.end(err == nil)
	if err != nil {
		if refused {
			return refuse(wire.ServerUnavailable, err.Error())
		}
		return err
	}
	// The session is in use: no expiry countdown until the client leaves.
	if err := c.srv.expiry.connected(c.clientID, c.expiry); err != nil {
		c.refused()
		return refuse(wire.ServerUnavailable, err.Error())
	}
	if c.srv.cfg.Cluster != nil && !c.srv.holds(c) {
		// Another node's CONNECT took the client id over since this one
		// was admitted (TakenOver): its node keeps the session's clock,
		// and the entry just recorded here as connected would arm a
		// countdown at this node's next restart, deleting the session
		// under the client (review11 F4). TakenOver's own drop (moved)
		// may have come before the record: drop it again (forget: the
		// same drop, written before the handshake ends). The
		// connection, kicked, closes without CONNACK.
		c.srv.expiry.forget(c.clientID)
		c.srv.release(c)
		return errors.New("taken over by a CONNECT of the same client id on another node")
	}
	present, err := c.openSession(cn.CleanStart)
	if err != nil {
		c.refused()
		if broker.IsQueueLimit(err) {
			return refuse(wire.QuotaExceeded, err.Error()) // 3.1.1: 0x03 Server unavailable
		}
		return refuse(wire.ServerUnavailable, err.Error())
	}
	if err := c.sessionReachable(); err != nil {
		c.refused()
		return refuse(wire.ServerUnavailable, err.Error())
	}
	c.attachSession(present)

	ack := &wire.Connack{SessionPresent: present}
	if c.v == wire.V5 {
		pr := &ack.Props
		pr.ReceiveMaximum = c.srv.cfg.ReceiveMaximum
		pr.Set(wire.PropReceiveMaximum)
		pr.TopicAliasMaximum = c.srv.cfg.TopicAliasMaximum
		pr.Set(wire.PropTopicAliasMaximum)
		pr.MaximumPacketSize = c.srv.cfg.MaxPacketSize
		pr.Set(wire.PropMaximumPacketSize)
		if serverKeepAlive {
			pr.ServerKeepAlive = keepAlive // the client must use it [MQTT-3.2.2-21]
			pr.Set(wire.PropServerKeepAlive)
		}
		if assigned {
			pr.AssignedClientID = c.clientID
			pr.Set(wire.PropAssignedClientID)
		}
	}
	c.mu.Lock()
	c.send(ack)
	c.acked = true
	r := c.kicked.Load()
	if r != 0 {
		// Kicked since the check above: kick left the DISCONNECT to go
		// after the CONNACK [MQTT-3.2.0-2]; the connection then ends.
		c.stopped = true
		if c.v == wire.V5 {
			c.send(&wire.Disconnect{ReasonCode: byte(r)})
		}
	}
	c.mu.Unlock()
	if r != 0 {
		// Nothing may follow the DISCONNECT [MQTT-3.14.4-1], and the
		// session's messages are for the connection that took it over:
		// no PUBREL resent, no consume (teardown follows).
		return nil
	}
	c.resendReleased()
	if err := c.startConsuming(); err != nil {
		c.sessionLost(err)
		return err
	}
	return nil
}

// takeOver ends the connections of the client id that c took over (claim):
// old, an older connection here, and any on the other nodes (cl). It
// fails refused when the CONNECT is to be answered Server unavailable (an
// older connection still closing), or not refused when the connection is
// to close without CONNACK (it lost the client id meanwhile).
func (c *conn) takeOver(old *conn, cl Cluster) (refused bool, err error) {
	if old != nil {
		old.kick(wire.SessionTakenOver)
		select {
		case <-old.finished:
		case <-time.After(5 * time.Second):
			// The old connection is still tearing down (a stalled
			// disk…): going on would let two connections use the
			// session's queue and QoS 2 state at once. The client
			// tries again.
			c.srv.unclaim(c, old)
			return true, errors.New("the session's previous connection is still closing")
		}
		if !c.srv.stillClaimed(c) {
			c.kicked.CompareAndSwap(0, uint32(wire.SessionTakenOver))
		}
	}
	if c.kicked.Load() != 0 {
		// A newer CONNECT of the client id (here or on another node)
		// took it over while this one waited, or the server is stopping:
		// this CONNECT must not go on to take the id from the other nodes
		// (that would end the newer connection) nor open the session it
		// no longer owns. The connection closes without CONNACK, as a
		// connected one taken over closes.
		c.srv.release(c)
		return false, errors.New("ended during the handshake: taken over by a newer CONNECT of the client id, or the server is stopping")
	}
	if cl != nil {
		if err := c.takeOverCluster(cl); err != nil {
			return true, err
		}
	}
	return false, nil
}

// refused gives up the client id of a CONNECT refused after it took the
// id over from the other nodes (takeOverCluster) or stopped this node's
// countdown (expiry.connected). Those dropped their session-expiry
// countdowns for it (TakenOver), and the session was not resumed: without
// a countdown here it would have none anywhere, its queue collecting its
// subscriptions' messages for good if the client never comes back
// (review11 F2). So the session counts down here, with the CONNECT's
// interval (the only one this node knows), as if the client had connected
// and left. Not when another connection took the id meanwhile: that one
// keeps the clock; nor for a client id with no session queue.
func (c *conn) refused() {
	if !c.srv.release(c) || c.expiry == 0 || c.vhost.LookupQueue(sessionQueue(c.clientID)) == nil {
		return
	}
	if err := c.srv.expiry.left(c.clientID, c.expiry); err != nil {
		c.logger().Error("recording the session expiry failed", "err", err)
	}
}

// authenticate checks the CONNECT's credentials against Tern's users; with
// none, the client is guest when anonymous logins are allowed.
func (c *conn) authenticate(cn *wire.Connect) (auth.User, error) {
	if !cn.HasUsername {
		if u, ok, err := c.certLogin(); ok {
			return u, err
		}
		if !c.srv.cfg.AllowAnonymous {
			return auth.User{}, errors.New("anonymous logins are disabled")
		}
		u, ok := c.srv.users.Lookup("guest")
		if !ok {
			return auth.User{}, errors.New("anonymous login: no guest user")
		}
		if u.LoopbackOnly && !isLoopback(c.nc.RemoteAddr()) {
			return auth.User{}, errors.New("anonymous login as guest is allowed from loopback only")
		}
		return u, nil
	}
	return c.srv.users.Authenticate(cn.Username, string(cn.Password), c.nc.RemoteAddr())
}

// sessionQueue is the queue holding a client's session.
func sessionQueue(clientID string) string { return "mqtt-subscription-" + clientID }

// ownerArg is the session queue's argument naming the user whose session
// it is.
const ownerArg = "x-mqtt-user"

// sessionOwner is the user whose session q is ("" for a queue made before
// Tern recorded it: resumed by nobody, replaced on first use).
func sessionOwner(q *broker.Queue) string {
	u, _ := q.Config().Args[ownerArg].(string)
	return u
}

// openSession finds or creates the session queue and reloads its
// subscriptions from the queue's bindings. It reports whether a session was
// present [MQTT-3.2.2-2].
//
// A new session that ends with its connection (clean session, or session
// expiry 0) declares no queue here: until it subscribes nothing can be
// routed to it, so its queue is declared by the first SUBSCRIBE
// (ensureQueue). A connect storm of such clients (most of a fleet that
// only publishes) then never queues on the vhost's declaration lock.
func (c *conn) openSession(clean bool) (bool, error) {
	name := sessionQueue(c.clientID)
	if !clean {
		// Another user's session is not resumed but replaced, as Mosquitto
		// does: its subscriptions and waiting messages were granted to
		// that user, and a client id is no credential.
		if q, ok := c.lookupQueue(name); ok {
			switch {
			case sessionOwner(q) != c.user.Name:
				c.logger().Info("MQTT session of another user replaced", "client_id", c.clientID, "user", c.user.Name, "owner", sessionOwner(q))
				clean = true
			case !q.Config().Durable:
				// Only a session that ends with its connection (clean, or
				// expiry 0) has a queue that is not durable, and the
				// connection this one took over has finished: that
				// session is over, and its state "MUST NOT be reused"
				// [MQTT-3.1.2-6], whatever the old connection's teardown
				// left (it skips the delete once the id is claimed).
				clean = true
			}
		}
	}
	if clean {
		// Only a session that exists is deleted: a new client (most of a
		// connect storm) skips a command through the vhost's declaration
		// lock, which every handshake otherwise queued on.
		if _, ok := c.lookupQueue(name); ok {
			if _, err := c.vhost.DeleteQueue(name, false, false, 0); err != nil {
				return false, err
			}
		}
	}
	q, present := c.lookupQueue(name)
	if !present {
		if !c.persistent {
			return false, nil // declared on the first SUBSCRIBE
		}
		if err := c.declareQueue(); err != nil {
			return false, err
		}
		return false, nil // a new session has no subscriptions to reload
	}
	c.queue = q
	for _, b := range c.vhost.QueueBindings(q) {
		if b.Queue != q || b.Source.Name() != "amq.topic" {
			continue
		}
		f := filterOf(b.Key, b.Args)
		if f == "" {
			continue
		}
		if !c.allowed(auth.Read, f) {
			// The user's read permission changed while it was away.
			c.logger().Info("MQTT subscription dropped: no read permission", "user", c.user.Name, "filter", f)
			_ = c.vhost.UnbindQueue(name, "amq.topic", b.Key, b.Args, 0)
			continue
		}
		put(&c.subs, f, subOptsFromArgs(b.Args))
	}
	return present && !clean, nil
}

// lookupQueue is vhost.Queue(name, 0) without the error it builds for a
// missing queue (a formatted message): a storm's new sessions look their
// queue up twice and find none.
func (c *conn) lookupQueue(name string) (*broker.Queue, bool) {
	if c.vhost.LookupQueue(name) == nil {
		return nil, false
	}
	q, err := c.vhost.Queue(name, 0)
	return q, err == nil
}

// declareQueue creates the session queue. No x-expires: the expiry
// interval may change on every CONNECT and DISCONNECT, so sessionExpiry
// keeps it (expiry.go).
func (c *conn) declareQueue() error {
	// No x-expires: the expiry interval may change on every CONNECT and
	// DISCONNECT, so sessionExpiry keeps it (expiry.go). The owner is
	// recorded so another user's CONNECT with this client id replaces the
	// session rather than resuming it (openSession).
	q, err := c.vhost.DeclareQueue(broker.QueueConfig{Name: sessionQueue(c.clientID), Durable: c.persistent,
		Args: map[string]any{ownerArg: c.user.Name}}, false, 0)
	if err != nil {
		return fmt.Errorf("creating the session queue: %w", err)
	}
	c.queue = q
	return nil
}

// ensureQueue declares and consumes the session queue of a session that
// has none yet (see openSession), before its first subscription is bound.
// It runs on the goroutine serving the connection, as teardown does.
func (c *conn) ensureQueue() error {
	if c.queue != nil {
		return nil
	}
	if err := c.declareQueue(); err != nil {
		return err
	}
	return c.startConsuming()
}

// startConsuming attaches the connection to its session queue, which then
// delivers what waited while the client was away. A session without a
// queue yet (openSession) starts consuming when it declares one.
func (c *conn) startConsuming() error {
	if c.queue == nil {
		return nil
	}
	sub := &subscriber{c: c, q: c.queue}
	c.mu.Lock()
	c.sub = sub
	c.mu.Unlock()
	return c.queue.Consume(sub, broker.ConsumeOptions{})
}

// attachSession takes up the session's QoS 2 state (inflight.go): a
// resumed persistent session's, or none for a new session, whose ended
// predecessor's state goes.
func (c *conn) attachSession(present bool) {
	if !present {
		c.srv.sessions.drop(c.clientID)
	}
	if c.queue == nil || (!present && !c.persistent) {
		return // a session that ends with the connection needs none
	}
	// A resumed session takes its state up even when it now ends with
	// the connection (5.0: no Clean Start, expiry 0): its in-flight
	// messages are still resent as the spec says; teardown drops it.
	st := c.srv.sessions.attach(c.clientID, c.queue.ID(), c.id)
	st.mu.Lock()
	inbound := st.inbound
	st.inbound = nil
	st.mu.Unlock()
	c.acks.mu.Lock()
	c.acks.rel = inbound
	c.acks.durable = c.srv.sessions.log != nil && c.persistent
	c.acks.mu.Unlock()
	c.mu.Lock()
	c.sess = st
	c.mu.Unlock()
}
