package amqp

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/accept"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// Config tunes the AMQP listener. Zero values take the defaults noted.
type Config struct {
	FrameMax         uint32        // largest frame offered in tune; default 131072
	ChannelMax       uint16        // default 2047
	Heartbeat        time.Duration // offered heartbeat; default 60s; negative disables
	MaxMessageSize   uint64        // largest message body; default 128 MiB
	HandshakeTimeout time.Duration // default 10s
	OutboxLimit      int           // bytes buffered per connection before deliveries wait; default 1 MiB
	ClusterName      string
	Version          string
	// CertName names the user of a verified TLS client certificate, for
	// SASL EXTERNAL; nil does not offer EXTERNAL.
	CertName func(*x509.Certificate) (string, error)
}

func (c Config) withDefaults() Config {
	if c.FrameMax == 0 {
		c.FrameMax = 131072
	}
	if c.ChannelMax == 0 {
		c.ChannelMax = 2047
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 60 * time.Second
	}
	if c.Heartbeat < 0 {
		c.Heartbeat = 0
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 128 << 20
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.OutboxLimit == 0 {
		c.OutboxLimit = 1 << 20
	}
	if c.ClusterName == "" {
		c.ClusterName = "tern"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	return c
}

// Stats are the AMQP listener's counters.
type Stats struct {
	ConnectionsOpen, ChannelsOpen, ConsumersOpen int64
	ConnectionsTotal, ChannelsTotal              uint64
	Confirmed, Nacked, Returned                  uint64
	BytesIn, BytesOut                            uint64
	Blocked                                      int64
	// AcceptFDExhausted counts the times the listener could not accept for
	// lack of file descriptors (each such episode, not each retry).
	AcceptFDExhausted uint64
}

type counters struct {
	connsOpen, chansOpen, consumersOpen, blocked atomic.Int64
	connsTotal, chansTotal                       atomic.Uint64
	confirmed, nacked, returned                  atomic.Uint64
	bytesIn                                      atomic.Uint64
	acceptExhausted                              atomic.Uint64
}

// Server accepts AMQP 0-9-1 connections for a broker.
type Server struct {
	cfg    Config
	broker *broker.Broker
	users  *auth.Store
	log    *slog.Logger

	nextConnID atomic.Uint64
	stats      counters

	conns accept.Conns[*connection]
}

// NewServer returns a server for b authenticating against users.
func NewServer(cfg Config, b *broker.Broker, users *auth.Store, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg.withDefaults(), broker: b, users: users, log: log}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		ConnectionsOpen:  s.stats.connsOpen.Load(),
		ChannelsOpen:     s.stats.chansOpen.Load(),
		ConsumersOpen:    s.stats.consumersOpen.Load(),
		ConnectionsTotal: s.stats.connsTotal.Load(),
		ChannelsTotal:    s.stats.chansTotal.Load(),
		Confirmed:        s.stats.confirmed.Load(),
		Nacked:           s.stats.nacked.Load(),
		Returned:         s.stats.returned.Load(),
		BytesIn:          s.stats.bytesIn.Load(),
		Blocked:          s.stats.blocked.Load(),

		AcceptFDExhausted: s.stats.acceptExhausted.Load(),
	}
}

// Serve accepts connections on ln until ctx is done or ln fails. On return
// every connection has been closed with connection.close 320
// (CONNECTION_FORCED) and its goroutines have exited.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	err := accept.Loop(ctx, ln, func(nc net.Conn) {
		c := newConnection(s, nc)
		s.conns.Go(c, c.serve)
	}, accept.Options{Log: s.log, Exhausted: &s.stats.acceptExhausted})
	s.shutdown()
	return err
}

// shutdown closes every connection with CONNECTION_FORCED and waits.
func (s *Server) shutdown() {
	conns := s.conns.Live()
	for _, c := range conns {
		c.forceClose("CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'")
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for _, c := range conns {
			_ = c.nc.Close()
		}
		s.conns.Wait()
	}
}
