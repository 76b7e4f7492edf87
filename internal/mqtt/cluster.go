package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Cluster is what the MQTT server needs of the cluster it runs in
// (internal/cluster's Node implements it); nil on a single node, which
// then pays nothing for any of this.
type Cluster interface {
	// TakeOver asks every other node to close its connection of clientID
	// in vhost [MQTT-3.1.4-2] and waits, bounded, until each reachable
	// node answered. An error means a node's connection of the client id
	// has not finished closing: the CONNECT is refused.
	TakeOver(ctx context.Context, vhost, clientID string, cleanStart bool) error
	// NodeReachable reports whether the node with replica id id (a
	// queue's Node) is connected to this one now.
	NodeReachable(id uint64) bool
	// NodeName names a node for the log.
	NodeName(id uint64) string
}

// Remote takeover marks (conn.remote): another node's CONNECT took the
// client id over, resuming the session or starting a new one. They decide
// what becomes of a delayed will, as claim does for a local takeover.
const (
	remoteResumed = 1
	remoteClean   = 2
)

// TakenOver tells this node's connection of clientID in vhost to close,
// for a CONNECT on another node (the cluster calls it), and returns a
// channel closed once it has ended, or nil when there is nothing to wait
// for. A connection still in its handshake is only told to close: it has
// not started taking the session's messages, and it refuses itself when
// it sees it lost the client id (handshake, takeOverCluster), so nobody
// waits for it — two CONNECTs of one client id on two nodes at once each
// end the other's instead of waiting on it — unless it is itself waiting
// for an older connection here to finish: the channel is then that one's.
// It does not block.
func (s *Server) TakenOver(vhost, clientID string, cleanStart bool) <-chan struct{} {
	if vhost != s.cfg.VHost {
		return nil
	}
	s.mu.Lock()
	old := s.active[clientID]
	admitted := false
	var holder *conn
	if old != nil {
		delete(s.active, clientID)
		admitted = old.admitted
		holder = old.waitingOn
		old.remote = remoteResumed
		if cleanStart {
			old.remote = remoteClean
		}
	}
	var sendNow func()
	if w := s.wills[clientID]; w != nil {
		if cleanStart {
			// The session ended there (Clean Start) [MQTT-3.1.2-8].
			delete(s.wills, clientID)
			if w.timer.Stop() {
				sendNow = w.send
			}
		} else {
			// Resumed on another node before the will's delay passed
			// [MQTT-3.1.3-9] — unless that CONNECT is refused, which
			// this node does not learn (review11 F2): the will stays,
			// and at its time goes only if no connection consumes the
			// session's queue then (publishWill).
			w.roamed = true
		}
	}
	s.mu.Unlock()
	// The client now uses its session on the other node, which keeps its
	// expiry clock from that CONNECT on: this node's countdown (armed when
	// the client left here, or due at a restart for an entry still marked
	// connected, as old's is: its teardown skips expiry.left once the id
	// is gone) would delete the session under the live connection there.
	s.expiry.moved(clientID)
	if sendNow != nil {
		go sendNow() // a publish: not on the cluster transport's goroutine
	}
	if old == nil {
		return nil
	}
	s.log.Info("MQTT client taken over by a connection on another node", "client_id", clientID,
		"peer", old.nc.RemoteAddr().String())
	old.kick(wire.SessionTakenOver)
	if !admitted {
		if holder != nil {
			// old waits for an older local connection that still holds
			// the session (its consumer, its unacked deliveries): the
			// remote CONNECT waits for that one (old gives up on its own
			// once it sees it lost the id).
			return holder.finished
		}
		return nil
	}
	return old.finished
}

// takeOverCluster has every other node close its connection of the client
// id, after the local takeover (claim) and before the session is opened:
// since each CONNECT claims the id locally before it asks the others, two
// CONNECTs on two nodes at once cannot both stay (at least one finds the
// other's claim). It fails, with the client id given up, when another
// node's connection has not finished closing in time, or when another
// node's CONNECT took the client id over meanwhile.
func (c *conn) takeOverCluster(cl Cluster) error {
	if err := cl.TakeOver(context.Background(), c.srv.cfg.VHost, c.clientID, c.cleanStart); err != nil {
		c.refused() // the nodes that answered dropped their countdowns
		c.warn("MQTT CONNECT refused: the client's connection on another node did not close in time", "err", err)
		return err
	}
	s := c.srv
	s.mu.Lock()
	ok := s.active[c.clientID] == c
	c.admitted = ok
	s.mu.Unlock()
	if !ok {
		return errors.New("taken over by a CONNECT of the same client id on another node")
	}
	return nil
}

// sessionReachable refuses to resume a session whose queue is held by a
// node this one cannot reach. A persistent session's queue is a classic
// queue, held by the node where the session began (docs/clustering.md,
// "MQTT in a cluster"); resumed on another node it is consumed from there
// over the cluster connection. With that node down, the CONNACK would
// promise a session (Session Present) that no message can come from:
// the consume fails at once and the connection drops, on every retry,
// without a word. So the CONNECT is refused with Server unavailable
// (3.1.1 return code 3, 5.0 reason 0x88: "the Server is not available"
// — 0x89 Server busy says the server is overloaded, which it is not) and
// a log line, and the client tries again until the node is back; or it
// connects with a clean session, which does not need the old queue.
func (c *conn) sessionReachable() error {
	cl := c.srv.cfg.Cluster
	if cl == nil || c.queue == nil || !c.queue.Remote() || cl.NodeReachable(c.queue.Node()) {
		return nil
	}
	node := cl.NodeName(c.queue.Node())
	c.warn("MQTT CONNECT refused: the node holding the session is unreachable; the client may retry until it is back, or start a clean session",
		"node", node, "queue", c.queue.Name())
	return fmt.Errorf("the session's node %s is unreachable", node)
}

// sessionLost ends a handshake whose session queue could not be consumed
// after CONNACK (its node was lost between the check above and the
// consume): the connection closes, saying why in the log, and gives the
// client id and the session's state up for the client's next try.
func (c *conn) sessionLost(err error) {
	c.warn("MQTT session could not be resumed: consuming its queue failed; closing the connection", "queue", c.queue.Name(), "err", err)
	c.detachSession()
	if c.srv.settle(c, c.expiry > 0) && c.expiry > 0 {
		_ = c.srv.expiry.left(c.clientID, c.expiry)
	}
	c.srv.release(c)
}

// warn logs a cluster-related line, at most connLogPerSecond a second
// (a fleet retrying against a down node would otherwise flood the log).
func (c *conn) warn(msg string, args ...any) {
	if ok, unlogged := c.srv.clusterLog.allow(time.Now()); ok {
		c.logger().Warn(msg, append(args, "unlogged", unlogged)...)
	}
}

// copyUnreachable counts a copy of a QoS 1/2 publish that could not reach
// its queue because the queue's node is down or unreachable (the
// Forwarder's broker.ErrNodeUnreachable), and logs it, rate-limited. It
// does not fail the publish: the copies for the live destinations were
// delivered, and the PUBACK goes. A 3.1.1 client has no negative
// acknowledgement, so failing it meant closing the publisher's connection
// (every publisher of a matching topic, on every node, in a loop, for one
// subscriber's session); 5.0's PUBACK 0x80 made every such publisher
// resend what its live subscribers already had. The queue on the down
// node misses the copy, as a RabbitMQ classic queue on a down node does.
// (docs/design/mqtt.md, "In a cluster".) Called with the ack queue's lock
// held.
func (c *conn) copyUnreachable(err error) {
	c.srv.stats.copiesUnreachable.Add(1)
	if ok, unlogged := c.srv.clusterLog.allow(time.Now()); ok {
		c.srv.log.Warn("MQTT publish acknowledged without the copy for a queue whose node is unreachable",
			"client_id", c.clientID, "err", err, "unlogged", unlogged)
	}
}
