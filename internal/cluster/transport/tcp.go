package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// TCP is the transport between real nodes. See the package documentation
// for the connection rule, the handshake and the frame format.
type TCP struct {
	cfg   TCPConfig
	log   *slog.Logger
	ln    net.Listener
	local *net.TCPAddr // source address of outgoing connections (nil: the kernel picks)
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	limit logLimiter
	// handshakes bounds the unauthenticated connections being
	// handshaken at once from addresses that are not a known peer's.
	handshakes chan struct{}
	hsMu       sync.Mutex
	hsPerIP    map[string]int // handshakes in progress by source address
	reqID      atomic.Uint64

	refused        atomic.Uint64
	protocolErrors atomic.Uint64
	busy           atomic.Uint64
	established    atomic.Uint64

	mu     sync.Mutex
	closed bool
	peers  map[NodeID]*peer
	// tombs are the peers removed from the cluster (Tombstone): their
	// handshakes get a removal notice. Read through tombView.
	tombs    map[NodeID]bool
	tombView atomic.Pointer[map[NodeID]bool]
	// view is a copy of peers for the lock-free lookups on the send path,
	// replaced whole on every change.
	view atomic.Pointer[map[NodeID]*peer]
}

var _ Transport = (*TCP)(nil)

// maxHandshakes bounds concurrent unauthenticated handshakes from
// addresses that are no known peer's.
const maxHandshakes = 64

// firstBytesTimeout is how long an accepted connection may stay silent
// before its first bytes (at most HandshakeTimeout).
const firstBytesTimeout = time.Second

// maxHandshakesPerIP bounds concurrent handshakes from one source address,
// a known peer's too, so one address cannot take every slot and a peer's
// own address keeps room while others fill the shared ones.
const maxHandshakesPerIP = 4

// NewTCP listens on cfg.ListenAddr and starts dialing the peers this node
// dials (those with a higher id). Close stops it.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on cluster address: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t := &TCP{
		cfg:        cfg,
		log:        cfg.Logger.With("node", cfg.Self),
		ln:         ln,
		ctx:        ctx,
		stop:       stop,
		limit:      logLimiter{every: 10 * time.Second},
		handshakes: make(chan struct{}, maxHandshakes),
		hsPerIP:    map[string]int{},
		peers:      map[NodeID]*peer{},
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsUnspecified() {
		t.local = &net.TCPAddr{IP: a.IP}
	}
	t.publish()
	t.wg.Add(1)
	go t.acceptLoop()
	for id, addr := range cfg.Peers {
		t.SetPeer(id, addr)
	}
	return t, nil
}

// Addr returns the bound listen address (the real port when ListenAddr
// asked for port 0).
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// publish refreshes the lock-free view of peers; t.mu is held.
func (t *TCP) publish() {
	m := make(map[NodeID]*peer, len(t.peers))
	for id, p := range t.peers {
		m[id] = p
	}
	t.view.Store(&m)
}

func (t *TCP) peer(id NodeID) *peer { return (*t.view.Load())[id] }

// SetPeer implements Transport. Changing a peer's address drops its
// connection, so the next one goes to the new address.
func (t *TCP) SetPeer(id NodeID, addr string) {
	if id == t.cfg.Self || id == 0 {
		return
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.setTombLocked(id, false)
	if p := t.peers[id]; p != nil {
		t.mu.Unlock()
		p.mu.Lock()
		changed := p.addr != addr
		p.addr = addr
		p.mu.Unlock()
		if changed {
			if c := p.conn.Load(); c != nil && c.dialed {
				c.close(errRemoved)
			}
			select {
			case p.redial <- struct{}{}:
			default:
			}
		}
		return
	}
	p := newPeer(t.ctx, id, addr)
	t.peers[id] = p
	t.publish()
	if t.cfg.Self < id {
		t.wg.Add(1)
		go t.dialLoop(p)
	}
	t.mu.Unlock()
}

// Tombstone is RemovePeer for a node removed from the cluster for good:
// its handshakes are answered with an authenticated removal notice (the
// dialer gets RemovedError and stops) instead of "unknown node id". A
// later SetPeer of id undoes it.
func (t *TCP) Tombstone(id NodeID) {
	t.mu.Lock()
	t.setTombLocked(id, true)
	t.mu.Unlock()
	t.RemovePeer(id)
}

// setTombLocked records or clears id's tombstone; t.mu is held.
func (t *TCP) setTombLocked(id NodeID, on bool) {
	if t.tombs[id] == on {
		return
	}
	if t.tombs == nil {
		t.tombs = map[NodeID]bool{}
	}
	if on {
		t.tombs[id] = true
	} else {
		delete(t.tombs, id)
	}
	m := make(map[NodeID]bool, len(t.tombs))
	for k := range t.tombs {
		m[k] = true
	}
	t.tombView.Store(&m)
}

func (t *TCP) tombstoned(id NodeID) bool {
	m := t.tombView.Load()
	return m != nil && (*m)[id]
}

// RemovePeer implements Transport: the peer's connection closes and a new
// one from it is refused.
func (t *TCP) RemovePeer(id NodeID) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.publish()
	t.mu.Unlock()
	if p == nil {
		return
	}
	p.cancel()
	if c := p.conn.Load(); c != nil {
		c.close(errRemoved)
	}
}

// Close implements Transport: it stops listening, closes every
// connection and waits for every goroutine, including running
// HandleRequest calls (their ctx is cancelled).
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()
	t.stop()
	err := t.ln.Close()
	for _, p := range peers {
		p.cancel()
		if c := p.conn.Load(); c != nil {
			c.close(errClosed)
		}
	}
	t.wg.Wait()
	return err
}

// side is this node's part of a handshake.
func (t *TCP) side() handshakeSide {
	return handshakeSide{self: t.cfg.Self, secret: t.cfg.Secret, known: func(id NodeID) bool { return t.peer(id) != nil },
		removed: t.tombstoned}
}

// attach makes an authenticated connection p's live one and starts its
// goroutines; nil when the transport closed or p was removed meanwhile.
func (t *TCP) attach(p *peer, nc net.Conn, br *bufio.Reader, dialed bool) *conn {
	t.mu.Lock()
	if t.closed || t.peers[p.id] != p {
		t.mu.Unlock()
		nc.Close()
		return nil
	}
	c := newConn(t, p, nc, br, dialed)
	old := p.install(c)
	t.established.Add(1)
	t.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	t.mu.Unlock()
	if old != nil {
		old.close(errReplaced)
	}
	t.log.Info("cluster peer connected", "peer", p.id, "local", nc.LocalAddr().String(), "remote", nc.RemoteAddr().String(), "dialed", dialed)
	return c
}

// acceptLoop accepts connections until the listener closes.
func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	delay := time.Duration(0)
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, in
			// growing steps, rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn("cluster accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		release, reason := t.admit(nc.RemoteAddr())
		if release == nil {
			t.refused.Add(1)
			if t.limit.allow(reason) {
				t.log.Warn("cluster peer refused", "remote", nc.RemoteAddr().String(), "reason", reason)
			}
			nc.Close()
			continue
		}
		t.wg.Add(1)
		go t.accept(nc, release)
	}
}

// admit takes a handshake slot for a connection from remote, or returns
// why not. A source address holds at most maxHandshakesPerIP handshakes.
// One that is a known peer's (the host of its address, as set, when that
// is an IP) needs no shared slot: connections from other addresses that
// say nothing until the handshake timeout cannot lock the cluster's nodes
// out of each other.
func (t *TCP) admit(remote net.Addr) (release func(), reason string) {
	ip := remote.String()
	if a, ok := remote.(*net.TCPAddr); ok {
		ip = a.IP.String()
	}
	t.hsMu.Lock()
	defer t.hsMu.Unlock()
	if t.hsPerIP[ip] >= maxHandshakesPerIP {
		return nil, "too many connections in handshake from this address"
	}
	shared := !t.knownPeerIP(ip)
	if shared {
		select {
		case t.handshakes <- struct{}{}:
		default:
			return nil, "too many connections in handshake"
		}
	}
	t.hsPerIP[ip]++
	return func() {
		t.hsMu.Lock()
		if t.hsPerIP[ip]--; t.hsPerIP[ip] <= 0 {
			delete(t.hsPerIP, ip)
		}
		t.hsMu.Unlock()
		if shared {
			<-t.handshakes
		}
	}, ""
}

// knownPeerIP reports whether ip is the host of a peer's address.
func (t *TCP) knownPeerIP(ip string) bool {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return false
	}
	for _, p := range *t.view.Load() {
		p.mu.Lock()
		addr := p.addr
		p.mu.Unlock()
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		if h := net.ParseIP(host); h != nil && h.Equal(parsed) {
			return true
		}
	}
	return false
}

// accept authenticates one incoming connection; release frees its
// handshake slot.
func (t *TCP) accept(nc net.Conn, release func()) {
	defer t.wg.Done()
	defer release()
	remote := nc.RemoteAddr().String()
	stop := context.AfterFunc(t.ctx, func() { nc.Close() })
	defer stop()
	// A dialer speaks first (a TLS ClientHello, or the hello's magic): a
	// connection silent for firstBytesTimeout gives its slot back then,
	// not at the handshake timeout.
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	nc.SetDeadline(time.Now().Add(min(firstBytesTimeout, t.cfg.HandshakeTimeout)))
	spoke := func() { nc.SetDeadline(deadline) }
	refuse := func(id NodeID, reason string) {
		t.refused.Add(1)
		nc.Close()
		if t.ctx.Err() != nil {
			return
		}
		if t.limit.allow(remote + "|" + reason) {
			args := []any{"remote", remote, "reason", reason}
			if id != 0 {
				args = append(args, "claimed_node", id)
			}
			t.log.Warn("cluster peer refused", args...)
		}
	}
	if t.cfg.TLS != nil {
		// The ClientHello read is the first bytes.
		cfg := t.cfg.TLS.Clone()
		next := cfg.GetConfigForClient
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			spoke()
			if next != nil {
				return next(hi)
			}
			return nil, nil
		}
		tc := tls.Server(nc, cfg)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			refuse(0, "TLS handshake: "+err.Error())
			return
		}
		nc = tc
	}
	ir := &idleReader{Conn: nc, idle: t.cfg.IdleTimeout}
	br := bufio.NewReaderSize(ir, 64<<10)
	bw := bufio.NewWriterSize(nc, 256)
	if t.cfg.TLS == nil {
		if _, err := br.Peek(1); err != nil {
			refuse(0, handshakeReason(err))
			return
		}
		spoke()
	}
	id, err := acceptHandshake(br, bw, t.side(), newNonce())
	if err != nil {
		refuse(id, handshakeReason(err))
		return
	}
	if !stop() {
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	ir.armed = true
	p := t.peer(id)
	if p == nil {
		refuse(id, fmt.Sprintf("node %d was removed during the handshake", id))
		return
	}
	t.attach(p, nc, br, false)
}

// handshakeReason turns a handshake error into a log reason.
func handshakeReason(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	var re *RefusedError
	if errors.As(err, &re) {
		return "refused by peer: " + re.Reason
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "handshake timed out"
	}
	return "handshake: " + err.Error()
}

// dialLoop keeps one connection to p (a peer with a higher id) up until
// p is removed or the transport closes: dial, run until the connection
// dies, wait a backoff (BackoffMin doubling to BackoffMax, with jitter;
// reset by a connection that lived longer than BackoffMax), repeat.
func (t *TCP) dialLoop(p *peer) {
	defer t.wg.Done()
	backoff := t.cfg.BackoffMin
	lastErr := ""
	for {
		start := time.Now()
		c, err := t.dial(p)
		if p.ctx.Err() != nil {
			if c != nil {
				c.close(errRemoved)
			}
			return
		}
		if re := (*RefusedError)(nil); errors.As(err, &re) {
			p.refusal.Store(&re.Reason)
		} else if err == nil {
			p.refusal.Store(nil)
		}
		if err == nil {
			lastErr = ""
			select {
			case <-c.done:
			case <-p.ctx.Done():
				return
			}
			if time.Since(start) > t.cfg.BackoffMax {
				backoff = t.cfg.BackoffMin
			}
		} else if gone := (*RemovedError)(nil); errors.As(err, &gone) {
			t.refused.Add(1)
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				t.log.Error("cluster peer says this node was removed from the cluster", "peer", p.id, "addr", p.address())
			}
			if t.cfg.OnRemoved != nil {
				t.cfg.OnRemoved(p.id)
			}
		} else {
			var re *RefusedError
			var rf *refusal
			refused := errors.As(err, &re) || errors.As(err, &rf)
			if refused {
				t.refused.Add(1)
			}
			// One line per change of reason, not one per attempt.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				if refused {
					t.log.Warn("cluster handshake failed", "peer", p.id, "addr", p.address(), "reason", handshakeReason(err))
				} else {
					t.log.Info("cluster peer unreachable", "peer", p.id, "addr", p.address(), "err", err)
				}
			}
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			backoff = min(2*backoff, t.cfg.BackoffMax)
		case <-p.redial:
			timer.Stop()
			backoff = t.cfg.BackoffMin
		case <-p.ctx.Done():
			timer.Stop()
			return
		}
	}
}

// dial makes and authenticates one connection to p.
func (t *TCP) dial(p *peer) (*conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, t.cfg.DialTimeout+t.cfg.HandshakeTimeout)
	defer cancel()
	nc, ir, br, stop, err := t.handshakeTo(ctx, p.id, p.address())
	if err != nil {
		return nil, err
	}
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	ir.armed = true
	c := t.attach(p, nc, br, true)
	if c == nil {
		return nil, errClosed
	}
	return c, nil
}

// Probe dials id at addr and runs the handshake, whatever the ids' order
// and whether id is a peer, then closes the connection: a node that is
// waiting for peers with lower ids to dial it asks them this way whether
// they still count it in. A peer that removed this node answers with a
// RemovedError; one that knows it refuses the higher id's dial (a
// RefusedError); nil is a peer that took the connection.
func (t *TCP) Probe(ctx context.Context, id NodeID, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout+t.cfg.HandshakeTimeout)
	defer cancel()
	nc, _, _, stop, err := t.handshakeTo(ctx, id, addr)
	if err != nil {
		return err
	}
	stop()
	nc.Close()
	return nil
}

// handshakeTo connects to addr (TLS when configured) and runs the
// dialer's handshake against id. On success the connection's deadline is
// still the handshake's, and stop detaches it from ctx (false: ctx ended
// first and closed it).
func (t *TCP) handshakeTo(ctx context.Context, id NodeID, addr string) (net.Conn, *idleReader, *bufio.Reader, func() bool, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout, KeepAlive: 15 * time.Second}
	if t.local != nil {
		d.LocalAddr = t.local
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	fail := func(err error) (net.Conn, *idleReader, *bufio.Reader, func() bool, error) {
		stop()
		nc.Close()
		return nil, nil, nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if t.cfg.TLS != nil {
		cfg := t.cfg.TLS
		if t.cfg.ClientTLS != nil {
			cfg = t.cfg.ClientTLS()
		}
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(&refusal{reason: "TLS handshake: " + err.Error()})
		}
		nc = tc
	}
	ir := &idleReader{Conn: nc, idle: t.cfg.IdleTimeout}
	br := bufio.NewReaderSize(ir, 64<<10)
	bw := bufio.NewWriterSize(nc, 256)
	if err := dialHandshake(br, bw, t.side(), id, newNonce()); err != nil {
		return fail(err)
	}
	return nc, ir, br, stop, nil
}
