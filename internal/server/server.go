package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/mgmt"
)

// Version is the build's version, set by the linker or left "dev".
var Version = "dev"

// Server is a running Tern node.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	Broker *broker.Broker
	Users  *auth.Store
	amqp   *amqp.Server

	amqpLn net.Listener
	httpLn net.Listener
	http   *http.Server
}

// New builds a node from cfg without binding anything.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log}
	s.Broker = broker.New(broker.Config{MemoryHighWatermark: int64(cfg.MemoryHighWatermark), Logger: log.With("component", "broker")})
	for _, v := range cfg.VHosts {
		s.Broker.AddVHost(v)
	}
	s.Users = auth.NewStore()
	if len(cfg.Users) == 0 {
		// RabbitMQ's default: guest/guest, from loopback only.
		s.Users.Put(auth.User{Name: "guest", PasswordHash: auth.HashPassword("guest"), LoopbackOnly: true, VHosts: []string{"*"}, Tags: []string{"administrator"}})
	}
	for _, u := range cfg.Users {
		hash := u.PasswordHash
		if hash == "" {
			hash = auth.HashPassword(u.Password)
		}
		vhosts := u.VHosts
		if len(vhosts) == 0 {
			vhosts = []string{"/"}
		}
		s.Users.Put(auth.User{Name: u.Name, PasswordHash: hash, LoopbackOnly: u.LoopbackOnly, VHosts: vhosts, Tags: u.Tags})
	}
	hb := time.Duration(cfg.AMQP.Heartbeat)
	if hb == 0 {
		hb = -1 // configured off
	}
	s.amqp = amqp.NewServer(amqp.Config{
		FrameMax:       cfg.AMQP.FrameMax,
		ChannelMax:     cfg.AMQP.ChannelMax,
		Heartbeat:      hb,
		MaxMessageSize: uint64(cfg.AMQP.MaxMessageSize),
		Version:        Version,
	}, s.Broker, s.Users, log.With("component", "amqp"))
	return s, nil
}

// Start prepares the data directory and binds the enabled listeners.
func (s *Server) Start() error {
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}
	var err error
	if s.cfg.AMQPAddr != "" {
		if s.amqpLn, err = net.Listen("tcp", s.cfg.AMQPAddr); err != nil {
			return fmt.Errorf("server: AMQP listener: %w", err)
		}
		s.log.Info("AMQP 0-9-1 listening", "addr", s.amqpLn.Addr().String())
	}
	if s.cfg.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			s.closeListeners()
			return fmt.Errorf("server: HTTP listener: %w", err)
		}
		s.log.Info("HTTP listening", "addr", s.httpLn.Addr().String(), "endpoints", "/healthz /metrics")
	}
	if s.cfg.MQTTAddr != "" {
		s.log.Warn("mqtt_addr is set but MQTT is not available in this version; ignoring", "addr", s.cfg.MQTTAddr)
	}
	return nil
}

func (s *Server) closeListeners() {
	for _, ln := range []net.Listener{s.amqpLn, s.httpLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// AMQPAddr returns the bound AMQP address, or nil when disabled.
func (s *Server) AMQPAddr() net.Addr {
	if s.amqpLn == nil {
		return nil
	}
	return s.amqpLn.Addr()
}

// HTTPAddr returns the bound HTTP address, or nil when disabled.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// AMQPStats returns the AMQP listener's counters.
func (s *Server) AMQPStats() amqp.Stats { return s.amqp.Stats() }

// Run serves until ctx is done, then closes every connection (CONNECTION_FORCED)
// and returns once everything has stopped.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if s.amqpLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.amqp.Serve(ctx, s.amqpLn); err != nil {
				errc <- fmt.Errorf("server: AMQP: %w", err)
			}
		}()
	}
	if s.httpLn != nil {
		src := mgmt.Sources{Broker: s.Broker.Stats}
		if s.amqpLn != nil {
			src.AMQP = s.amqp.Stats
		}
		s.http = &http.Server{Handler: mgmt.Handler(src), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: HTTP: %w", err)
			}
		}()
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.http.Shutdown(sctx)
		}()
	}
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}
