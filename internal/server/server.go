package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tern-broker/tern/internal/amqp"
	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster"
	"github.com/tern-broker/tern/internal/cluster/solo"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/flow"
	"github.com/tern-broker/tern/internal/mgmt"
	"github.com/tern-broker/tern/internal/mqtt"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// Version is the build's version, set by the linker or left "dev".
var Version = "dev"

// Server is a running Tern node.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	Broker *broker.Broker
	Users  *auth.Store
	Store  *store.Store
	amqp   *amqp.Server
	mqtt   *mqtt.Server
	// node is this server's cluster membership; nil for a single node.
	node *cluster.Node
	// solo hosts a single node's quorum queues (solo.go); nil in a cluster.
	solo *solo.Groups

	lock          *os.File
	diskFreeLimit atomic.Uint64
	diskFree      atomic.Uint64 // the last measured free space
	diskTrigger   atomic.Pointer[flow.Trigger]
	lnMu          sync.Mutex  // the client listeners, bound late on a promoted standby
	serving       atomic.Bool // the client listeners are served (not a standby waiting for promotion)
	amqpLn        net.Listener
	mqttLn        net.Listener
	mqttWSLn      net.Listener
	httpLn        net.Listener
	http          *http.Server
	tls           tlsListeners // tls.go
}

// New builds a node from cfg without touching the disk or the network.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, w := range cfg.Warnings() {
		log.Warn("configuration: " + w)
	}
	s := &Server{cfg: cfg, log: log}
	s.diskFreeLimit.Store(uint64(cfg.DiskFreeLimit))
	s.Users = auth.NewStore() // filled by recovery, or seeded from cfg.Users (users.go)
	return s, nil
}

// Start opens the data directory (locking it against a second node),
// recovers the durable state and binds the enabled listeners.
func (s *Server) Start() error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}
	if err := s.lockDataDir(); err != nil {
		return err
	}
	if err := s.loadTLS(); err != nil {
		return err
	}
	st, err := store.Open(vfs.Default, cfg.DataDir, store.Options{
		Sync:         store.SyncMode(cfg.Fsync),
		SyncInterval: time.Duration(cfg.FsyncInterval),
		SegmentSize:  int64(cfg.SegmentSize),
		// Below the alarm's limit, half of it stays for acks, indexes
		// and definitions: publishes that got in before the alarm
		// blocked their connection are refused there, not at ENOSPC.
		Reserve:     int64(cfg.DiskFreeLimit / 2),
		OnFreeSpace: s.observeFreeSpace,
		Logger:      s.log.With("component", "store"),
	})
	if err != nil {
		return err
	}
	s.Store = st
	if err := checkDataDirMode(cfg, st); err != nil {
		return err
	}
	var repl broker.Replication
	if cfg.Cluster.Enabled() {
		ccfg, ccerts, err := clusterConfig(cfg, s.log)
		s.tls.cluster = ccerts
		if err != nil {
			return err
		}
		if s.node, err = cluster.New(ccfg); err != nil {
			return err
		}
		repl = broker.Replication{Node: s.node.ID(), Metadata: s.node, Quorum: s.node.Quorum(), Forward: s.node.Forwarder()}
	} else {
		repl = s.soloReplication()
	}
	delayedLog, delayed, err := openDelayed(st)
	if err != nil {
		s.closeNode()
		return err
	}
	s.Broker = broker.New(broker.Config{
		MemoryHighWatermark: int64(cfg.MemoryHighWatermark),
		QueueMemoryLimit:    int64(cfg.QueueMemoryLimit),
		Storage:             storage{st},
		Delayed:             delayedLog,
		Logger:              s.log.With("component", "broker"),
		Clock:               cfg.Clock,
		Replication:         repl,
		Users:               s.Users,
	})
	s.diskTrigger.Store(s.newDiskTrigger(s.Broker.Clock()))
	start := time.Now()
	if s.node != nil {
		s.node.Forwarder().SetBroker(s.Broker)
		if err := s.startCluster(); err != nil {
			s.closeNode()
			return err
		}
	} else if err := s.recoverDefinitions(); err != nil {
		_ = s.closeSolo()
		return err
	}
	s.Broker.RestoreDelayed(delayed) // after Restore and Replay declared their exchanges
	live := map[string]bool{}
	for _, q := range s.Broker.Definitions().Queues {
		live[q.ID] = true
	}
	if _, err := st.RemoveOrphanLogs(live); err != nil {
		s.log.Warn("could not remove the logs of deleted queues", "err", err)
	}
	s.removeSoloOrphans() // solo.go
	// After recovery, so only a vhost new to the configuration is logged.
	var newVHosts []string
	for _, v := range cfg.VHosts {
		if s.Broker.VHost(v) == nil {
			newVHosts = append(newVHosts, v)
		}
		if err := s.Broker.Apply(broker.AddVHost{Name: v}); err != nil {
			return err
		}
	}
	if err := s.seedUsers(newVHosts); err != nil {
		return err
	}
	if err := s.Broker.Apply(broker.SetLimits{Limits: cfg.Limits}); err != nil {
		return err
	}
	s.log.Info("recovery complete", "took", time.Since(start).Round(time.Millisecond), "data_dir", cfg.DataDir)
	// Recovery's scratch (segment reads, recovered lists) is garbage now;
	// hand it back to the OS instead of carrying it in RSS.
	debug.FreeOSMemory()

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
		CertName:       s.certName(), // SASL EXTERNAL, offered to verified client certificates
		ClusterName:    s.clusterName(),
	}, s.Broker, s.Users, s.log.With("component", "amqp"))

	serveClients := s.node == nil || !s.node.IsStandby()
	if !serveClients {
		s.log.Info("standby node: serving no AMQP or MQTT clients (a learner in every group) until promoted")
	}
	if serveClients {
		if err := s.bindAMQP(); err != nil {
			return err
		}
	}
	if cfg.HTTPAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			s.closeListeners()
			return fmt.Errorf("server: HTTP listener: %w", err)
		}
		s.log.Info("HTTP listening", "addr", s.httpLn.Addr().String(), "serves", "management API /api/, console /, /healthz, /metrics")
	}
	if err := s.bindHTTPS(); err != nil {
		s.closeListeners()
		return err
	}
	retainedLog, retained, err := openRetained(s.Store)
	if err != nil {
		s.closeListeners()
		return err
	}
	sessionLog, sessions, err := openMQTTRecords(s.Store, "mqtt-inflight")
	if err != nil {
		s.closeListeners()
		return err
	}
	var mqttCluster mqtt.Cluster // nil on a single node: not a nil *cluster.Node
	if s.node != nil {
		mqttCluster = s.node
	}
	s.mqtt, err = mqtt.NewServer(mqtt.Config{
		Cluster: mqttCluster,
		VHost:   cfg.MQTTVHost, AllowAnonymous: cfg.MQTTAllowAnonymous, DataDir: cfg.DataDir, QoS0Backlog: cfg.MQTTQoS0Backlog,
		MaxKeepAlive:   uint16(cfg.MQTTMaxKeepAlive),  // config.Validate keeps it in 0…65535
		MaxPacketSize:  uint32(cfg.MQTTMaxPacketSize), // config.Validate keeps it in 1KiB…256MiB
		ConnectTimeout: time.Duration(cfg.MQTTConnectTimeout) * time.Second,
		ConnectRate:    noLimit(cfg.MQTTConnectRate), ConnectRatePerAddress: noLimit(cfg.MQTTConnectRatePerAddress),
		RetainedLog: retainedLog, Retained: retained,
		SessionLog: sessionLog, Sessions: sessions,
		CertName: s.mqttCertName(),
	}, s.Broker, s.Users, s.log.With("component", "mqtt"))
	if err != nil {
		s.closeListeners()
		return err
	}
	if s.node != nil {
		s.node.SetClientTakeover(s.mqtt.TakenOver) // other nodes' CONNECTs (cluster/takeover.go)
	}
	if serveClients {
		if err := s.bindMQTT(); err != nil {
			s.closeListeners()
			return err
		}
	}
	return nil
}

// bindAMQP binds the AMQP listener, if enabled.
func (s *Server) bindAMQP() error {
	if s.cfg.AMQPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.AMQPAddr)
	if err != nil {
		return fmt.Errorf("server: AMQP listener: %w", err)
	}
	s.lnMu.Lock()
	s.amqpLn = ln
	s.lnMu.Unlock()
	s.log.Info("AMQP 0-9-1 listening", "addr", ln.Addr().String())
	return nil
}

// bindMQTT binds the MQTT and MQTT-over-WebSocket listeners that are
// enabled.
func (s *Server) bindMQTT() error {
	if s.cfg.MQTTAddr != "" {
		// No TCP keep-alive set at accept (four setsockopt calls, a
		// twentieth of a connect's CPU in a connect storm): MQTT's own
		// keep-alive finds a dead peer, and a client without one gets
		// TCP's at CONNECT (internal/mqtt handshake.go).
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), "tcp", s.cfg.MQTTAddr)
		if err != nil {
			return fmt.Errorf("server: MQTT listener: %w", err)
		}
		s.lnMu.Lock()
		s.mqttLn = ln
		s.lnMu.Unlock()
		s.log.Info("MQTT 3.1.1/5.0 listening", "addr", ln.Addr().String())
	}
	if s.cfg.MQTTWSAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.MQTTWSAddr)
		if err != nil {
			return fmt.Errorf("server: MQTT WebSocket listener: %w", err)
		}
		s.lnMu.Lock()
		s.mqttWSLn = ln
		s.lnMu.Unlock()
		s.log.Info("MQTT over WebSocket listening", "addr", ln.Addr().String(), "subprotocol", "mqtt")
	}
	return s.bindTLSClients() // tls.go: AMQPS, MQTTS and WSS go with the plain client listeners
}

// lockDataDir takes an exclusive lock on the data directory so two nodes
// never write the same files.
func (s *Server) lockDataDir() error {
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return fmt.Errorf("server: data directory %s is in use by another tern: %w", s.cfg.DataDir, err)
	}
	s.lock = f
	return nil
}

func (s *Server) closeListeners() {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for _, ln := range []net.Listener{s.amqpLn, s.httpLn, s.mqttLn, s.mqttWSLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	s.tls.close()
}

// AMQPAddr returns the bound AMQP address, or nil when disabled.
func (s *Server) AMQPAddr() net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.amqpLn == nil {
		return nil
	}
	return s.amqpLn.Addr()
}

// MQTTAddr returns the bound MQTT address, or nil when disabled.
func (s *Server) MQTTAddr() net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.mqttLn == nil {
		return nil
	}
	return s.mqttLn.Addr()
}

// MQTTWSAddr returns the bound MQTT-over-WebSocket address, or nil.
func (s *Server) MQTTWSAddr() net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.mqttWSLn == nil {
		return nil
	}
	return s.mqttWSLn.Addr()
}

// MQTTStats returns the MQTT listener's counters.
func (s *Server) MQTTStats() mqtt.Stats { return s.mqtt.Stats() }

// HTTPAddr returns the bound HTTP address, or nil when disabled.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// AMQPStats returns the AMQP listener's counters.
func (s *Server) AMQPStats() amqp.Stats { return s.amqp.Stats() }

// Run serves until ctx is done, then closes every connection
// (CONNECTION_FORCED), flushes and closes the store, and returns once
// everything has stopped.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 8)             // one per sender at most (listeners, HTTP, removal)
	ctx = s.stopWhenRemoved(ctx, &wg, errc) // cluster_nodes.go
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.monitorResources(monitorCtx)
	}()
	for _, r := range []*certs.Reloader{s.tls.certs, s.tls.cluster} {
		if r != nil && s.cfg.TLS.ReloadInterval > 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.Watch(monitorCtx, time.Duration(s.cfg.TLS.ReloadInterval))
			}()
		}
	}
	if s.node != nil && s.node.IsStandby() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.awaitPromotion(ctx, &wg, errc)
		}()
	} else {
		s.serveClients(ctx, &wg, errc)
	}
	if httpLn := mergeListeners(s.httpLn, s.tls.hs); httpLn != nil {
		src := mgmt.Sources{Broker: s.Broker.Stats, Store: s.Store.Stats, MQTT: s.mqtt.Stats, Alarms: s.Broker.Alarms,
			Limits: s.Broker.Limits(), Users: s.Users, Security: s.Broker, VHostExists: func(v string) bool { return s.Broker.VHost(v) != nil },
			SetLimits:  func(l []flow.Limit) error { return s.Broker.Apply(broker.SetLimits{Limits: l}) },
			Policies:   s.Broker,
			NotServing: s.notServing,
			Access:     mgmt.Access{OpenPaths: s.cfg.HTTPOpenPaths, Log: s.log.With("component", "http")}}
		if s.cfg.AMQPAddr != "" || (s.cfg.TLSEnabled() && s.cfg.AMQPSAddr != "") {
			src.AMQP = s.amqp.Stats
		}
		if s.node != nil {
			src.Cluster = func() any { return s.node.Status() }
			src.Raft = func() mgmt.RaftStats { return raftStats(s.node) }
			src.Promote = s.promote
			src.AddNode, src.RemoveNode = s.addNode, s.removeNode // cluster_nodes.go
			src.Grow, src.Shrink = s.grow, s.shrink               // cluster_grow.go
		}
		src.API = s.managementAPI(ctx.Done(), time.Now()) // mgmt_api.go
		s.http = &http.Server{Handler: mgmt.Handler(src, s.cfg.Pprof), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	<-ctx.Done()
	stopMonitor()
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	if s.node != nil {
		// After the clients: their last acks and publishes reach the
		// groups before the groups stop.
		if err := s.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("server: closing the cluster node: %w", err))
		}
	}
	if err := s.closeSolo(); err != nil {
		errs = append(errs, fmt.Errorf("server: closing the quorum queues: %w", err))
	}
	if err := s.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("server: closing the store: %w", err))
	}
	if s.lock != nil {
		_ = s.lock.Close()
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}

// serveClients serves the bound client listeners until ctx ends; errors go
// to errc.
func (s *Server) serveClients(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	s.serving.Store(true)
	s.lnMu.Lock()
	// Each protocol accepts on its plain and TLS listener together.
	// MQTT's are served apart (Serve takes several at once): the plain one
	// is then a *net.TCPListener, which internal/mqtt accepts from with
	// accept4 onto its event loop.
	amqpLn, mqttLn, mqttsLn, mqttWSLn := mergeListeners(s.amqpLn, s.tls.amqps), s.mqttLn, s.tls.mqtts, mergeListeners(s.mqttWSLn, s.tls.wss)
	s.lnMu.Unlock()
	if amqpLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.amqp.Serve(ctx, amqpLn); err != nil {
				errc <- fmt.Errorf("server: AMQP: %w", err)
			}
		}()
	}
	for _, ln := range []net.Listener{mqttLn, mqttsLn} {
		if ln == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.mqtt.Serve(ctx, ln); err != nil {
				errc <- fmt.Errorf("server: MQTT: %w", err)
			}
		}()
	}
	if mqttWSLn != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.mqtt.ServeWebSocket(ctx, mqttWSLn, s.cfg.MQTTWSAllowedOrigins); err != nil {
				errc <- fmt.Errorf("server: MQTT WebSocket: %w", err)
			}
		}()
	}
}

// SetDiskFreeLimit changes the free-space threshold of the disk alarm at
// run time; the monitor applies it within a second.
func (s *Server) SetDiskFreeLimit(bytes uint64) { s.diskFreeLimit.Store(bytes) }

// diskAlarmHold is the least time the disk alarm stays on, so free space
// hovering at the limit does not make publishers flap.
const diskAlarmHold = time.Second

// newDiskTrigger drives the disk alarm from the free space with hysteresis:
// on below the limit, off once the free space is a tenth of the limit above
// it (and the alarm was on for diskAlarmHold).
func (s *Server) newDiskTrigger(c clock.Clock) *flow.Trigger {
	s.diskFree.Store(math.MaxUint64)
	level := func() int64 { // bytes short of the limit
		return clampInt64(s.diskFreeLimit.Load()) - clampInt64(s.diskFree.Load())
	}
	t := flow.NewTrigger(s.Broker.DiskAlarm(), level, c, diskAlarmHold, func(on bool, level, _, _ int64) {
		limit, free := s.diskFreeLimit.Load(), s.diskFree.Load()
		if on {
			s.log.Warn("disk alarm set: free space below the limit; blocking publishers", "free", free, "limit", limit)
		} else {
			s.log.Info("disk alarm cleared", "free", free, "limit", limit)
		}
	})
	s.applyDiskLimit(t)
	return t
}

func (s *Server) applyDiskLimit(t *flow.Trigger) {
	t.SetThresholds(0, -clampInt64(s.diskFreeLimit.Load()/10))
}

func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// observeFreeSpace feeds a measurement of the free space to the disk alarm.
// The store calls it on the write path (after every MiB written), so the
// alarm follows a fast publisher instead of the once-a-second poll.
func (s *Server) observeFreeSpace(free uint64) {
	s.diskFree.Store(free)
	if t := s.diskTrigger.Load(); t != nil {
		t.Check()
	}
}

// monitorResources measures the free space every second — for space freed
// or taken by others, and limit changes — besides the store's measurements
// on the write path, and returns memory to the OS after a large backlog
// drained (Broker.ReleaseMemory).
func (s *Server) monitorResources(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	limit := s.diskFreeLimit.Load()
	for {
		if l := s.diskFreeLimit.Load(); l != limit {
			limit = l
			s.applyDiskLimit(s.diskTrigger.Load())
		}
		_, _ = s.Store.FreeSpace() // calls observeFreeSpace
		s.Broker.ReleaseMemory(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// noLimit maps a configured rate, where 0 is no limit, to the MQTT
// server's, where 0 is its default and a negative rate no limit.
func noLimit(perSecond float64) float64 {
	if perSecond == 0 {
		return -1
	}
	return perSecond
}
