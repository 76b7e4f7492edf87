package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/cluster"
	"github.com/tern-broker/tern/internal/mgmt"
)

// joinStartTimeout bounds a joining node's wait to be added and catch up:
// longer than a founding node's, since an operator adds it by hand.
const joinStartTimeout = 10 * time.Minute

// joinConfig sets a joining node's options (--join).
func joinConfig(c *cluster.Config, join bool) {
	if join {
		c.Join = true
		c.StartTimeout = joinStartTimeout
	}
}

// addNode serves POST /api/cluster/nodes.
func (s *Server) addNode(ctx context.Context, name, addr string, standby bool) error {
	return clientError(s.node.AddNode(ctx, name, addr, standby))
}

// removeNode serves DELETE /api/cluster/nodes/{name}.
func (s *Server) removeNode(ctx context.Context, name string) error {
	return clientError(s.node.RemoveNode(ctx, name))
}

// clientError marks the errors a request caused (400, not 503).
func clientError(err error) error {
	for _, e := range []error{cluster.ErrUnknownNode, cluster.ErrNodeRemoved, cluster.ErrBadMember, cluster.ErrMemberConflict} {
		if errors.Is(err, e) {
			return mgmt.BadRequest{Err: err}
		}
	}
	return err
}

// stopWhenRemoved returns ctx, cancelled when this node is removed from
// the cluster: the node (cluster.Node logs it) stops serving and the
// process exits with an error saying why.
func (s *Server) stopWhenRemoved(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) context.Context {
	if s.node == nil {
		return ctx
	}
	ctx, cancel := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-s.node.Removed():
			select {
			case errc <- s.node.RemovedError():
			default: // errc is full of other errors: the exit still says why (the node logged it)
			}
			cancel()
		}
	}()
	return ctx
}
