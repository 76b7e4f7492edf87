package mqtt

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/tern-broker/tern/internal/accept"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/vfs"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Config tunes the MQTT listener. Zero values take the defaults noted.
type Config struct {
	VHost             string // vhost MQTT clients use; default "/"
	MaxPacketSize     uint32 // largest packet accepted; default 16 MiB
	ReceiveMaximum    uint16 // unacknowledged QoS 1/2 publishes a client may have in flight; default 1024
	InflightWindow    int    // QoS 1/2 deliveries in flight to a 3.1.1 client; default 1000
	TopicAliasMaximum uint16 // default 100
	OutboxLimit       int    // bytes buffered per connection before deliveries wait; default 1 MiB
	QoS0Backlog       int    // messages waiting for a subscriber before QoS 0 ones are dropped; default 1,000,000
	// AllowAnonymous lets clients without a user name in as "guest", as
	// RabbitMQ's MQTT plugin does by default (guest stays loopback-only).
	AllowAnonymous bool
	// DataDir holds the MQTT sessions' expiry file, and perhaps a previous
	// version's retained messages file (migrated into RetainedLog once);
	// "" keeps them in memory.
	DataDir string
	// RetainedLog keeps retained messages durably; nil keeps them in
	// memory. Retained is what it recovered.
	RetainedLog RetainedLog
	Retained    []RetainedRecord
	// SessionLog keeps persistent sessions' QoS 2 state (inflight.go)
	// durably; nil keeps it in memory. Sessions is what it recovered.
	SessionLog SessionLog
	Sessions   []RetainedRecord
	// MaxKeepAlive is the longest keep-alive in seconds a client may use,
	// as Mosquitto's max_keepalive: a 5.0 client asking for more, or for
	// none, gets this as Server Keep Alive [MQTT-3.2.2-21]; a 3.1.1 client
	// (which cannot be told) is refused. 0: no maximum.
	MaxKeepAlive uint16
	// CertName, when set, lets a client that sends no user name log in as
	// the user its verified TLS client certificate names (RabbitMQ's
	// mqtt.ssl_cert_login); credentials in CONNECT take priority.
	CertName func(*x509.Certificate) (string, error)
	// ConnectTimeout closes a connection that has not sent a whole
	// CONNECT this long after it was accepted; default 10 s.
	ConnectTimeout time.Duration
	// ConnectRate bounds the connections accepted per second (burst as
	// many), so a reconnect storm waits in the kernel's backlog; 0: 20,000.
	// Negative: no limit.
	ConnectRate float64
	// ConnectRatePerAddress bounds the connections accepted per second from
	// one source address (burst as many); past it they are closed unread.
	// 0: 1,000. Negative: no limit.
	ConnectRatePerAddress float64
	// NoEventLoop keeps a goroutine per TCP connection instead of parking
	// idle ones on the event loop (for comparison; see io.go).
	NoEventLoop bool
	// Cluster, in a cluster, takes client ids over from the other nodes
	// and tells whether a session's node is reachable (cluster.go); nil
	// on a single node.
	Cluster Cluster
}

func (c Config) withDefaults() Config {
	if c.VHost == "" {
		c.VHost = "/"
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = 16 << 20
	}
	if c.ReceiveMaximum == 0 {
		c.ReceiveMaximum = 1024
	}
	if c.InflightWindow == 0 {
		c.InflightWindow = 1000
	}
	if c.TopicAliasMaximum == 0 {
		c.TopicAliasMaximum = 100
	}
	if c.OutboxLimit == 0 {
		c.OutboxLimit = 1 << 20
	}
	if c.ConnectRate == 0 {
		c.ConnectRate = 20_000
	}
	if c.ConnectRatePerAddress == 0 {
		c.ConnectRatePerAddress = 1_000
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.QoS0Backlog == 0 {
		c.QoS0Backlog = 1_000_000
	}
	return c
}

// Stats are the MQTT listener's counters.
type Stats struct {
	ConnectionsOpen            int64
	ConnectionsTotal           uint64
	PublishesIn, DeliveriesOut uint64
	QoS0Dropped                uint64 // QoS 0 deliveries dropped for a slow subscriber
	RetainedMessages           int
	// AcceptFDExhausted counts the times the TCP listener could not accept
	// for lack of file descriptors (each such episode, not each retry).
	AcceptFDExhausted uint64
	// RateLimited counts connections closed unread for coming too fast
	// from one address (ConnectRatePerAddress).
	RateLimited uint64
	// ConnectionsParked is how many connections wait on the event loop
	// with no goroutine; ReadBuffersInUse how many pooled read buffers
	// connections hold now (idle ones hold none).
	ConnectionsParked int64
	ReadBuffersInUse  int64
	// AcceptThrottled counts accepts that waited for the overall connect
	// rate (ConnectRate).
	AcceptThrottled uint64
	// CopiesUnreachable counts copies of QoS 1/2 publishes that could not
	// reach a queue because its node was down or unreachable (cluster.go):
	// the publish was acknowledged for its other destinations.
	CopiesUnreachable uint64
	// HandshakesWaiting is how many accepted connections wait for one of
	// the handshakes running at once (maxHandshakes, handshakes.go).
	HandshakesWaiting int64
	// UnsendableTopics counts deliveries dropped because the message's
	// AMQP routing key is no valid MQTT topic name (topic.go).
	UnsendableTopics uint64
}

type counters struct {
	connsOpen                          atomic.Int64
	connsTotal, publishesIn, delivered atomic.Uint64
	qos0Dropped, acceptExhausted       atomic.Uint64
	rateLimited, acceptThrottled       atomic.Uint64
	copiesUnreachable                  atomic.Uint64
	unsendable                         atomic.Uint64
	parked, readBufs                   atomic.Int64
}

// Server accepts MQTT connections for a broker.
type Server struct {
	cfg      Config
	broker   *broker.Broker
	clock    clock.Clock // the broker's: expiries, will delays, publish times
	users    *auth.Store
	log      *slog.Logger
	retained *retainedStore
	expiry   *sessionExpiry
	sessions *sessions // persistent sessions' QoS 2 state (inflight.go)
	started  int64     // the broker clock's UnixNano when the server was made
	stats    counters
	nextID   atomic.Uint64

	connectLog, disconnectLog lineLimit // loglimit.go
	clusterLog                lineLimit // cluster.go: a node unreachable, a takeover refused
	expiryLog                 lineLimit // expiry.go: sessions ended or kept by their countdown
	refusedLog                lineLimit // access.go: publishes the topic permissions refuse
	unsendableLog             lineLimit // deliver.go: messages whose routing key is no topic name

	mu     sync.Mutex
	active map[string]*conn        // client id → its live connection
	wills  map[string]*delayedWill // client id → a delayed will waiting to go
	conns  accept.Conns[*conn]

	perAddr    *addrLimiter  // nil: no per-address limit
	acceptRate *rate.Limiter // nil: no overall limit

	serving int        // Serve calls running (guarded by mu)
	loop    *eventLoop // while serving, unless NoEventLoop or unsupported (guarded by mu)
}

// NewServer returns an MQTT server for b.
func NewServer(cfg Config, b *broker.Broker, users *auth.Store, log *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rs := newRetainedStore(cfg.RetainedLog, cfg.Retained)
	if cfg.RetainedLog != nil && cfg.DataDir != "" {
		n, err := migrateLegacyRetained(vfs.Default, cfg.DataDir, cfg.RetainedLog, rs)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			log.Info("migrated retained messages into the store", "file", legacyRetainedFile, "messages", n)
		}
	}
	epath := ""
	if cfg.DataDir != "" {
		epath = filepath.Join(cfg.DataDir, "mqtt-sessions.bin")
	}
	ex, err := newSessionExpiry(vfs.Default, epath, b.Clock())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, broker: b, clock: b.Clock(), users: users, log: log, retained: rs, expiry: ex,
		sessions: newSessions(cfg.SessionLog, cfg.Sessions), started: b.Clock().Now().UnixNano(),
		active: map[string]*conn{}, wills: map[string]*delayedWill{}}
	ex.ended = s.sessions.drop
	ex.info = func(msg string, args ...any) {
		if ok, unlogged := s.expiryLog.allow(time.Now()); ok {
			log.Info(msg, append(args, "unlogged", unlogged)...)
		}
	}
	s.perAddr = newAddrLimiter(cfg.ConnectRatePerAddress)
	if cfg.ConnectRate > 0 {
		s.acceptRate = rate.NewLimiter(rate.Limit(cfg.ConnectRate), max(1, int(cfg.ConnectRate)))
	}
	ex.start(func() *broker.VHost { return b.VHost(cfg.VHost) }, func(id string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.active[id] != nil
	})
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.retained.mu.Lock()
	n := len(s.retained.msgs[s.cfg.VHost])
	s.retained.mu.Unlock()
	var waiting int64
	s.mu.Lock()
	if s.loop != nil {
		waiting = s.loop.runners.gate.queued.Load()
	}
	s.mu.Unlock()
	return Stats{
		ConnectionsOpen: s.stats.connsOpen.Load(), ConnectionsTotal: s.stats.connsTotal.Load(),
		PublishesIn: s.stats.publishesIn.Load(), DeliveriesOut: s.stats.delivered.Load(),
		QoS0Dropped: s.stats.qos0Dropped.Load(), RetainedMessages: n,
		AcceptFDExhausted: s.stats.acceptExhausted.Load(),
		RateLimited:       s.stats.rateLimited.Load(), AcceptThrottled: s.stats.acceptThrottled.Load(),
		ConnectionsParked: s.stats.parked.Load(), ReadBuffersInUse: s.stats.readBufs.Load(),
		CopiesUnreachable: s.stats.copiesUnreachable.Load(), HandshakesWaiting: waiting,
		UnsendableTopics: s.stats.unsendable.Load(),
	}
}

// Serve accepts connections on ln until ctx is done, then disconnects every
// client (DISCONNECT 0x8B for 5.0) and waits for their goroutines.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.startLoop()
	defer s.stopLoop()
	s.mu.Lock()
	if s.loop != nil {
		ln = acceptRaw(ln) // sockconn_linux.go: accept4, connections on the event loop only
	}
	s.mu.Unlock()
	handle := func(nc net.Conn) {
		if !s.perAddr.allow(nc.RemoteAddr(), time.Now()) {
			s.stats.rateLimited.Add(1)
			_ = nc.Close()
			return
		}
		s.handle(nc)
		s.throttle(ctx) // before the next accept
	}
	err := accept.Loop(ctx, ln, handle, accept.Options{Log: s.log, Exhausted: &s.stats.acceptExhausted})
	if err != nil {
		// Not a shutdown (Loop returns nil then) nor a transient error
		// (retried): MQTT serving on this listener ends here, and its
		// clients are disconnected, while the process runs on. Said now,
		// not only when the process exits and reads the error.
		s.log.Error("MQTT listener failed: no longer accepting connections; disconnecting its clients",
			"listener", ln.Addr().String(), "err", err)
	}
	conns := s.conns.Live()
	s.expiry.stop()
	s.mu.Lock()
	for _, w := range s.wills {
		w.timer.Stop()
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.kick(wire.ServerShuttingDown)
	}
	s.conns.Wait()
	return err
}

// handle serves a client connection (TCP, TLS or WebSocket).
func (s *Server) handle(nc net.Conn) {
	c := newConn(s, nc)
	s.conns.Add(c)
	s.mu.Lock()
	loop := s.loop
	s.mu.Unlock()
	c.start(loop)
}

// startLoop starts the event loop with the first Serve.
func (s *Server) startLoop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serving++
	if s.loop != nil || s.cfg.NoEventLoop || !pollerSupported {
		return
	}
	l := &eventLoop{runners: newRunners()}
	p, err := newPoller(&l.burst)
	if err != nil {
		s.log.Warn("MQTT event loop unavailable; every connection keeps a goroutine", "err", err)
		return
	}
	l.poller = p
	l.wheel = newWheel(wheelTick, func(c *conn) { c.wake(wakeExpired) })
	s.loop = l
}

// stopLoop stops the event loop when the last Serve returns (its
// connections have all ended).
func (s *Server) stopLoop() {
	s.mu.Lock()
	s.serving--
	var l *eventLoop
	if s.serving == 0 {
		l, s.loop = s.loop, nil
	}
	s.mu.Unlock()
	if l != nil {
		l.wheel.close()
		l.poller.close()
	}
}

// delayedWill is a 5.0 will waiting for its delay.
type delayedWill struct {
	timer clock.Timer
	send  func()
	// roamed (guarded by Server.mu): another node's CONNECT asked to
	// resume the session (TakenOver).
	roamed bool
}

// stillClaimed ends c's wait for the connection it took over (claim) and
// reports whether c still holds its client id.
func (s *Server) stillClaimed(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.waitingOn = nil // not kept: a chain of takeovers would keep every old connection
	return s.active[c.clientID] == c
}

// holds reports whether c holds its client id.
func (s *Server) holds(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[c.clientID] == c
}

// claim makes c the connection of its client id and returns the one it
// takes over, if any. A delayed will of the client id is cancelled when c
// resumes the session [MQTT-3.1.3-9], and sent now when c starts a new one
// (Clean Start): the old session has ended [MQTT-3.1.2-8].
func (s *Server) claim(c *conn) *conn {
	s.mu.Lock()
	old := s.active[c.clientID]
	s.active[c.clientID] = c
	c.waitingOn = old
	var sendNow func()
	if w := s.wills[c.clientID]; w != nil {
		delete(s.wills, c.clientID)
		if w.timer.Stop() && c.cleanStart {
			sendNow = w.send
		}
	}
	s.mu.Unlock()
	if sendNow != nil {
		sendNow()
	}
	return old
}

// settle is a closing connection's decision about its session, under
// s.mu: it reports whether c still holds the client id (and so ends or
// parks the session itself). From then on unclaim never hands the id back
// to c. hasSession says whether c had a session to end or park: when
// another connection holds the id, c leaves it alone, and the other one
// takes that over should it give up waiting (unclaim).
func (s *Server) settle(c *conn, hasSession bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	active := s.active[c.clientID] == c
	c.settled = true
	c.sessionLeft = hasSession && !active
	return active
}

// unclaim gives the client id back to old, still closing, when c gave up
// waiting for it: old's teardown then ends the session as it would have.
// If old's teardown got past its decision meanwhile (it found c holding
// the id, so left the session alone), old is not put back — a finished
// connection in s.active would keep the session "resumed" for good, its
// expiry never counted — and c ends or parks the session in its place.
func (s *Server) unclaim(c, old *conn) {
	s.mu.Lock()
	if s.active[c.clientID] != c {
		s.mu.Unlock()
		return
	}
	if !old.settled {
		s.active[c.clientID] = old
		s.mu.Unlock()
		return
	}
	delete(s.active, c.clientID)
	orphan := old.sessionLeft
	old.sessionLeft = false
	s.mu.Unlock()
	if orphan {
		old.leaveSession()
	}
}

// release gives c's client id up, if c holds it (it reports whether it
// did), and settles c.
func (s *Server) release(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.settled = true
	if s.active[c.clientID] == c {
		delete(s.active, c.clientID)
		return true
	}
	return false
}
