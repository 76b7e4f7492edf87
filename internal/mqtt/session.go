package mqtt

import (
	"net"
	"time"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

func isLoopback(a net.Addr) bool {
	host := a.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// teardown ends the session's attachment: consumers go, in-flight QoS 1/2
// deliveries return to their queues (to be resent, DUP, when the session
// resumes), a clean session's queue is deleted, and the will is published
// unless the client disconnected normally.
func (c *conn) teardown() {
	c.mu.Lock()
	c.closed = true
	var back []broker.Delivery
	for _, of := range c.inflight {
		if of.stored {
			back = append(back, of.d)
		}
	}
	c.inflight = nil
	c.mu.Unlock()

	if c.sub != nil {
		c.queue.Cancel(c.sub)
	}
	c.mu.Lock()
	shared := c.shared
	c.mu.Unlock()
	for _, s := range shared {
		s.q.Cancel(s)
	}
	byQueue := map[*broker.Queue][]broker.Delivery{}
	for _, d := range back {
		byQueue[d.Queue] = append(byQueue[d.Queue], d)
	}
	for q, ds := range byQueue {
		q.Requeue(ds)
	}
	c.detachSession()
	if c.srv.settle(c, c.queue != nil) && c.queue != nil {
		c.leaveSession()
	}
	if !c.graceful || !c.noWill {
		c.publishWill()
	}
	c.srv.release(c)
}

// leaveSession ends the session of a connection that closed holding the
// client id (or that a takeover gave up waiting for: unclaim), or starts
// its expiry countdown.
func (c *conn) leaveSession() {
	if c.expiry == 0 {
		// The session ends with the connection: expiry 0 at CONNECT,
		// or set to 0 by DISCONNECT [MQTT-3.1.2-23].
		_, _ = c.vhost.DeleteQueue(c.queue.Name(), false, false, 0)
		c.srv.expiry.forget(c.clientID)
		c.srv.sessions.drop(c.clientID)
	} else if err := c.srv.expiry.left(c.clientID, c.expiry); err != nil {
		c.srv.log.Error("recording the session expiry failed", "client_id", c.clientID, "err", err)
	}
}

// detachSession hands the session's inbound QoS 2 packet ids back to its
// state, for the next connection; the outbound ones stay there, and the
// deliveries in flight went back to the session queue in seq order, so
// the next connection resends them first, with their ids (inflight.go).
func (c *conn) detachSession() {
	c.mu.Lock()
	st := c.sess
	c.mu.Unlock()
	if st == nil {
		return
	}
	c.acks.mu.Lock()
	inbound := c.acks.rel
	c.acks.rel = nil
	c.acks.mu.Unlock()
	c.srv.sessions.detach(c.clientID, st, c.id, inbound)
}

// publishWill publishes the CONNECT's will, for 5.0 after its delay or at
// the end of the session if that comes first; a session resumed before
// then cancels it.
func (c *conn) publishWill() {
	p := c.will
	if p == nil {
		return
	}
	send := func() {
		// Permissions may have changed since CONNECT (or during the
		// will's delay): checked again, as RabbitMQ does when it sends one.
		if !c.allowed(auth.Write, p.Topic) {
			c.logger().Info("MQTT will not published: no write permission", "user", c.user.Name, "topic", p.Topic)
			return
		}
		if err := c.tooLarge(len(p.Payload)); err != nil {
			c.logger().Info("MQTT will not published", "user", c.user.Name, "topic", p.Topic, "err", err)
			return
		}
		m := c.toMessage(p)
		if p.Retain {
			if err := c.srv.retained.set(c.srv.cfg.VHost, p.Topic, m); err != nil {
				c.logger().Error("storing a retained will failed", "err", err)
			}
		}
		var s broker.RouteScratch
		if _, err := c.vhost.Publish(&s, m, nil, 0); err != nil {
			c.logger().Warn("publishing the will failed", "err", err)
		}
	}
	// The will goes when its delay passes or the session ends, whichever
	// is first [MQTT-3.1.2-8, MQTT-3.1.3-9]: a session with expiry 0 ends
	// now, so its will goes now whatever the delay.
	delay := time.Duration(min(p.Props.WillDelay, c.expiry)) * time.Second
	if c.v != wire.V5 || delay == 0 {
		send()
		return
	}
	srv := c.srv
	srv.mu.Lock()
	if r := c.remote; r != 0 {
		// Taken over by another node's CONNECT (cluster.go), as below.
		srv.mu.Unlock()
		if r == remoteClean {
			send()
		}
		return
	}
	if cur := srv.active[c.clientID]; cur != nil && cur != c {
		srv.mu.Unlock()
		if cur.cleanStart {
			send() // the new connection ended the session: no delay left
		}
		// Otherwise it resumed the session before the delay began
		// [MQTT-3.1.3-9].
		return
	}
	w := &delayedWill{send: send}
	w.timer = srv.clock.AfterFunc(delay, func() {
		srv.mu.Lock()
		if srv.wills[c.clientID] == w {
			delete(srv.wills, c.clientID)
		}
		roamed := w.roamed
		srv.mu.Unlock()
		if roamed {
			// Another node's CONNECT asked to resume the session: it
			// did if its connection consumes the session's queue now
			// [MQTT-3.1.3-9]; with none, it was refused (or has left
			// again since), and the will goes.
			if q := c.vhost.LookupQueue(sessionQueue(c.clientID)); q != nil && q.ConsumerCount() > 0 {
				return
			}
		}
		send()
	})
	srv.wills[c.clientID] = w
	srv.mu.Unlock()
}
