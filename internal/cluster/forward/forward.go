package forward

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// Config configures a Forwarder. Zero durations and sizes take the
// defaults named beside them.
type Config struct {
	// Self is this node's id.
	Self uint64
	// Transport reaches the other nodes; the node routes the kinds of
	// this package (Owns) from its transport Handler to HandleRequest and
	// HandleNotify.
	Transport transport.Transport
	// Broker is this node's broker, whose queues the owner side serves;
	// it may be set later with SetBroker (the broker takes the Forwarder
	// in its configuration). Until it is set, requests are refused.
	Broker *broker.Broker
	Logger *slog.Logger
	Clock  clock.Clock
	// NodeName names a node id for the clients' error texts ("n2");
	// nil or "" falls back to the number.
	NodeName func(id uint64) string

	RequestTimeout    time.Duration // consume, get, purge and counts wait this long for the owner (default 5 s)
	PublishTimeout    time.Duration // a publish batch waits this long for the owner's durability, then is nacked (default 10 s)
	KeepaliveInterval time.Duration // a client node tells each owner its consumers live this often (default 1 s)
	LeaseTimeout      time.Duration // an owner ends a client node's consumers after this long without hearing from it (default 5 s)
	MaxPendingBytes   int           // publishes queued for one owner; beyond, publishes are nacked at once (default 32 MiB)
	Window            int           // deliveries in flight to a consumer without a prefetch (no-ack, or prefetch 0) (default 256)
	CountsMaxAge      time.Duration // a remote queue's cached counts are refreshed when older (default 1 s)
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Clock = clock.Or(c.Clock)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.PublishTimeout, 10*time.Second)
	def(&c.KeepaliveInterval, time.Second)
	def(&c.LeaseTimeout, 5*time.Second)
	def(&c.CountsMaxAge, time.Second)
	if c.MaxPendingBytes <= 0 {
		c.MaxPendingBytes = 32 << 20
	}
	if c.Window <= 0 {
		c.Window = 256
	}
}

// Forwarder implements broker.Forwarder (the client side) and serves other
// nodes' forwarded operations (the owner side). Create it with New; set it
// as broker.Replication.Forward; route this package's transport kinds to
// HandleRequest and HandleNotify; Close it at shutdown.
type Forwarder struct {
	cfg   Config
	log   *slog.Logger
	tr    transport.Transport
	b     atomic.Pointer[broker.Broker]
	epoch uint64 // this process's: names its consumers' sessions on owners

	nextConsumer atomic.Uint64
	stats        counters

	links sync.Map // client side: owner node → *link

	mu       sync.Mutex
	byQueue  map[*broker.Queue][]*remoteConsumer // client side
	byQC     map[qc]*remoteConsumer              // client side
	sessions map[uint64]*session                 // owner side, per client node
	closed   bool
	timer    clock.Timer
}

type qc struct {
	q *broker.Queue
	c broker.Consumer
}

var _ broker.Forwarder = (*Forwarder)(nil)

// New returns a Forwarder; its keepalive and lease timer runs until Close.
func New(cfg Config) *Forwarder {
	cfg.setDefaults()
	var e [8]byte
	_, _ = rand.Read(e[:])
	f := &Forwarder{cfg: cfg, log: cfg.Logger, tr: cfg.Transport,
		epoch:    binary.BigEndian.Uint64(e[:]) | 1, // never 0
		byQueue:  map[*broker.Queue][]*remoteConsumer{},
		byQC:     map[qc]*remoteConsumer{},
		sessions: map[uint64]*session{},
	}
	if cfg.Broker != nil {
		f.b.Store(cfg.Broker)
	}
	f.mu.Lock() // tick reads f.timer under f.mu; it may fire before AfterFunc returns
	f.timer = cfg.Clock.AfterFunc(cfg.KeepaliveInterval, f.tick)
	f.mu.Unlock()
	return f
}

// SetBroker sets the broker the owner side serves (when it could not be
// given to New).
func (f *Forwarder) SetBroker(b *broker.Broker) { f.b.Store(b) }

// Close stops the timer and ends every session: consumers of other nodes
// on this node's queues are cancelled and what they held is requeued;
// this node's forwarded consumers are left to the owners' leases.
func (f *Forwarder) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	f.timer.Stop()
	sessions := f.sessions
	f.sessions = map[uint64]*session{}
	f.mu.Unlock()
	for _, s := range sessions {
		s.end("node shutting down")
	}
}

// tick runs every KeepaliveInterval: client links send keepalives, owner
// sessions whose lease ran out end.
func (f *Forwarder) tick() {
	now := f.cfg.Clock.Now()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	var expired []*session
	for node, s := range f.sessions {
		if s.expired(now, f.cfg.LeaseTimeout) {
			expired = append(expired, s)
			delete(f.sessions, node)
		}
	}
	f.timer.Reset(f.cfg.KeepaliveInterval)
	f.mu.Unlock()
	var links []*link
	f.links.Range(func(_, l any) bool {
		links = append(links, l.(*link))
		return true
	})
	for _, s := range expired {
		s.end("lease expired")
	}
	for _, l := range links {
		l.maybeKeepalive(now)
	}
}

// HandleRequest serves a forwarded operation (kinds for which Owns is
// true); the node's transport Handler routes them here.
func (f *Forwarder) HandleRequest(ctx context.Context, from uint64, kind uint8, body []byte) ([]byte, error) {
	b := f.b.Load()
	if b == nil {
		return nil, fmt.Errorf("forward: node %d is starting", f.cfg.Self)
	}
	switch kind {
	case KindPublish:
		return f.handlePublish(ctx, b, body)
	case KindConsume:
		return f.handleConsume(b, from, body)
	case KindControl:
		return f.handleControl(from, body)
	case KindGet:
		return f.handleGet(b, from, body)
	case KindPurge:
		return f.handlePurge(b, body)
	case KindCounts:
		return f.handleCounts(b, body)
	case KindKeepalive:
		return f.handleKeepalive(from, body)
	case KindStatus:
		return f.handleStatus(from, body)
	}
	return nil, fmt.Errorf("forward: unknown request kind %d", kind)
}

// HandleNotify receives deliveries and cancellations for this node's
// forwarded consumers. It runs on the transport's reader goroutine and
// hands each delivery to its consumer without blocking (TryDeliver).
func (f *Forwarder) HandleNotify(from uint64, kind uint8, body []byte) {
	var err error
	switch kind {
	case KindDeliver:
		err = f.handleDeliver(from, body)
	case KindCancelled:
		err = f.handleCancelled(from, body)
	default:
		err = fmt.Errorf("unknown notify kind %d", kind)
	}
	if err != nil {
		f.log.Warn("cluster forward notify dropped", "peer", from, "kind", kind, "err", err)
	}
}

func (f *Forwarder) lookup(b *broker.Broker, r queueRef) *broker.Queue {
	v := b.VHost(r.VHost)
	if v == nil {
		return nil
	}
	return v.QueueByID(r.Name, r.ID)
}

func refOf(q *broker.Queue) queueRef {
	return queueRef{VHost: q.VHost().Name(), Name: q.Name(), ID: q.ID()}
}

// NodeDown tells the Forwarder that node is gone (removed from the
// cluster, or known dead by a failure detector) without waiting for the
// lease: node's consumers on this node's queues are cancelled and what
// they held requeued at once, and this node's consumers of node's queues
// are cancelled. Harmless if node is alive: its consumers are cancelled
// (clients that asked get basic.cancel) and nothing is lost.
func (f *Forwarder) NodeDown(node uint64) {
	f.mu.Lock()
	s := f.sessions[node]
	delete(f.sessions, node)
	f.mu.Unlock()
	if s != nil {
		s.end("node down")
	}
	if v, ok := f.links.Load(node); ok {
		l := v.(*link)
		l.mu.Lock()
		rcs := make([]*remoteConsumer, 0, len(l.consumers))
		for _, rc := range l.consumers {
			rcs = append(rcs, rc)
		}
		l.gets = 0
		l.ctl, l.credit = nil, map[uint64]uint64{}
		l.mu.Unlock()
		for _, rc := range rcs {
			f.drop(rc)
		}
	}
}
