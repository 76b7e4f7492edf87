package cluster

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/tern-broker/tern/internal/cluster/transport"
)

// A crashed node (user8 F1). A process that dies — kill -9, an OOM kill,
// a panic — has its sockets closed by the kernel: its peers' cluster
// connections to it end at once, and a dial of its cluster port is
// refused (nothing listens there any more). Its transient queues are gone
// with it for certain (their messages were in its memory, their owners'
// connections on it; a restarted node deletes its own leftovers), so the
// metadata leader deletes them right away instead of waiting DownGrace,
// as RabbitMQ deletes them at nodedown, which a closed distribution link
// fires at once. Waiting was what made a Celery worker that reconnects to
// a survivor within milliseconds exit: its pidbox fanout publish nacked,
// its queue's consume refused with 404, its exclusive reply queue locked.
//
// A partition gives no such evidence: the connection stays up until the
// idle timeout, then dials time out or find no route, so the node keeps
// DownGrace there (its clients may still be connected to it). A firewall
// that rejects with a TCP reset looks like a crash: that node's transient
// queues are deleted at once, and it applies the deletes when it is back
// (its consumers of them are cancelled), as after the grace.

// peerLost is the transport's OnDisconnect: the sweeper looks now, and
// dials the peer's port if it did not come back.
func (n *Node) peerLost(transport.NodeID) {
	select {
	case n.lost <- struct{}{}:
	default:
	}
}

// The leader dials a disconnected member's cluster port to ask whether
// anything listens there: at once, then after probeFirstGap doubling to
// probeEvery (a dying process may close its connections a moment before
// its listener).
const (
	probeFirstGap = 50 * time.Millisecond
	probeEvery    = time.Second
)

// probeTimeout bounds one such dial: a refusal comes back in a round trip.
const probeTimeout = 500 * time.Millisecond

// crashProbes is the metadata leader's view of which disconnected members
// refused a dial of their cluster port. Owned by the sweeper, except
// refused, which the probe goroutines set.
type crashProbes struct {
	next map[uint64]time.Time     // when each member may be probed next
	gap  map[uint64]time.Duration // the wait after that probe
	kick chan struct{}            // capacity 1: a probe found a refusal, sweep now

	mu      sync.Mutex
	refused map[uint64]bool // members whose port refused the last probe
	// gen counts, per member, the forgets of its probe state, and epoch
	// the resets: a probe started before either has its verdict dropped.
	gen   map[uint64]uint64
	epoch uint64
}

func newCrashProbes() *crashProbes {
	return &crashProbes{next: map[uint64]time.Time{}, gap: map[uint64]time.Duration{}, refused: map[uint64]bool{}, gen: map[uint64]uint64{}, kick: make(chan struct{}, 1)}
}

// crashed reports whether member m refused the last probe. It starts a
// probe (at most one per probeEvery per member) when none is recent.
func (n *Node) crashed(c *crashProbes, m Member, now time.Time) bool {
	c.mu.Lock()
	dead := c.refused[m.ID]
	c.mu.Unlock()
	if dead || m.Addr == "" {
		return dead
	}
	if at, ok := c.next[m.ID]; ok && now.Before(at) {
		return false
	}
	gap := c.gap[m.ID]
	if gap == 0 {
		gap = probeFirstGap
	}
	c.next[m.ID], c.gap[m.ID] = now.Add(gap), min(2*gap, probeEvery)
	c.mu.Lock()
	epoch, gen := c.epoch, c.gen[m.ID]
	c.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := n.stopContext(probeTimeout)
		defer cancel()
		if refusedDial(ctx, m.Addr) {
			c.mu.Lock()
			if c.epoch == epoch && c.gen[m.ID] == gen {
				c.refused[m.ID] = true
			}
			c.mu.Unlock()
		} else {
			// Look again when the next probe is due, not at the
			// next tick: a dying process may close its listener last.
			t := time.NewTimer(gap)
			defer t.Stop()
			select {
			case <-t.C:
			case <-n.stop:
				return
			}
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}()
	return false
}

// forget drops what is known of member id: it is connected again.
func (c *crashProbes) forget(id uint64) {
	if _, probing := c.next[id]; !probing {
		return
	}
	delete(c.next, id)
	delete(c.gap, id)
	c.mu.Lock()
	c.gen[id]++
	delete(c.refused, id)
	c.mu.Unlock()
}

func (c *crashProbes) reset() {
	clear(c.next)
	clear(c.gap)
	c.mu.Lock()
	clear(c.refused)
	c.epoch++
	c.mu.Unlock()
}

// refusedDial reports whether a TCP dial of addr is refused (the host
// answers, nothing listens on the port). A connection that opens is
// closed at once without a word (the peer logs a refused handshake, rate
// limited); a timeout or an unreachable network is not a refusal.
func refusedDial(ctx context.Context, addr string) bool {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		nc.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
