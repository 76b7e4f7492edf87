package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// peer is what the transport knows about one other node: its address,
// its current connection (at most one) and its counters, which outlive
// connections.
type peer struct {
	id     NodeID
	ctx    context.Context // ends when the peer is removed or the transport closes
	cancel context.CancelFunc
	redial chan struct{} // capacity 1: the address changed, dial now

	conn atomic.Pointer[conn] // the live connection, nil when none (read without mu)

	mu        sync.Mutex
	addr      string
	up        chan struct{} // closed while conn is set; replaced when it is cleared
	connected bool          // a connection has existed (the next one counts as a reconnect)

	bytesSent, bytesRecv atomic.Uint64
	msgsSent, msgsRecv   atomic.Uint64
	dropped, reconnects  atomic.Uint64
	// refusal is the reason the peer gave when it last refused this
	// node's dial (nil once a dial connected; a dial that failed
	// otherwise, a timeout, leaves it).
	refusal atomic.Pointer[string]
}

func newPeer(parent context.Context, id NodeID, addr string) *peer {
	ctx, cancel := context.WithCancel(parent)
	return &peer{id: id, ctx: ctx, cancel: cancel, redial: make(chan struct{}, 1), addr: addr, up: make(chan struct{})}
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// install makes c the peer's connection and returns the one it replaces.
func (p *peer) install(c *conn) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.conn.Load()
	if old == nil {
		close(p.up)
	}
	p.conn.Store(c)
	if p.connected {
		p.reconnects.Add(1)
	}
	p.connected = true
	return old
}

// detach clears c if it is still the peer's connection.
func (p *peer) detach(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn.Load() == c {
		p.conn.Store(nil)
		p.up = make(chan struct{})
	}
}

// waitConn returns the live connection, waiting up to wait (and ctx, and
// the peer's life) for one to come up; nil when none did.
func (p *peer) waitConn(ctx context.Context, wait time.Duration) *conn {
	if c := p.conn.Load(); c != nil {
		return c
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		c, up := p.conn.Load(), p.up
		p.mu.Unlock()
		if c != nil {
			return c
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil
		case <-p.ctx.Done():
			return nil
		case <-timer.C:
			return nil
		}
	}
}
