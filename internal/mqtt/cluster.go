package mqtt

import (
	"context"
	"errors"
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

// takeoverMargin is kept of the asking node's deadline for the answer to
// travel back.
const takeoverMargin = 250 * time.Millisecond

// TakenOver closes this node's connection of clientID in vhost for a
// CONNECT on another node (the cluster calls it) and reports whether it
// has ended before ctx's deadline. A connection still in its handshake is
// only told to close: it has not started taking the session's messages,
// and it refuses itself when it sees it lost the client id
// (handshake.go), so nobody waits for it — two CONNECTs of one client id
// on two nodes at once each end the other's instead of waiting on it.
func (s *Server) TakenOver(ctx context.Context, vhost, clientID string, cleanStart bool) bool {
	if vhost != s.cfg.VHost {
		return true
	}
	s.mu.Lock()
	old := s.active[clientID]
	admitted := false
	if old != nil {
		delete(s.active, clientID)
		admitted = old.admitted
		old.remote = remoteResumed
		if cleanStart {
			old.remote = remoteClean
		}
	}
	var sendNow func()
	if w := s.wills[clientID]; w != nil {
		// The session resumed on another node before its will's delay
		// passed [MQTT-3.1.3-9], or ended there (Clean Start)
		// [MQTT-3.1.2-8].
		delete(s.wills, clientID)
		if w.timer.Stop() && cleanStart {
			sendNow = w.send
		}
	}
	s.mu.Unlock()
	if sendNow != nil {
		sendNow()
	}
	if old == nil {
		return true
	}
	s.log.Info("MQTT client taken over by a connection on another node", "client_id", clientID,
		"peer", old.nc.RemoteAddr().String())
	old.kick(wire.SessionTakenOver)
	if !admitted {
		return true
	}
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-takeoverMargin)
	}
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case <-old.finished:
		return true
	case <-t.C:
		return false
	}
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
		c.srv.release(c)
		c.logger().Warn("MQTT CONNECT refused: the client's connection on another node did not close in time", "err", err)
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
