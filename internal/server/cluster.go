package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/certs"
	"github.com/tern-broker/tern/internal/cluster"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/mgmt"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// clusterDir is where a cluster node keeps its identity and WAL.
func clusterDir(dataDir string) string { return filepath.Join(dataDir, "cluster") }

// clusterConfig translates the [cluster] settings into the node's Config,
// and returns the cluster port's certificate files (nil without TLS) for
// reloading.
func clusterConfig(cfg config.Config, log *slog.Logger) (cluster.Config, *certs.Reloader, error) {
	peers, err := cfg.Cluster.ParsedPeers()
	if err != nil {
		return cluster.Config{}, nil, err
	}
	out := cluster.Config{Dir: clusterDir(cfg.DataDir), FS: vfs.Default, Secret: cfg.Cluster.Secret, Logger: log,
		DownGrace: time.Duration(cfg.Cluster.DownGrace)}
	for _, p := range peers {
		m := cluster.Member{ID: p.ID, Name: p.Name, Addr: p.Addr, Standby: p.Standby}
		out.Members = append(out.Members, m)
		if p.Name == cfg.Cluster.NodeID {
			out.Self = m
		}
	}
	joinConfig(&out, cfg.Cluster.Join) // cluster_nodes.go
	r, err := clusterTLS(cfg.Cluster.TLS, log.With("component", "cluster-tls"))
	if err != nil {
		return cluster.Config{}, nil, err
	}
	if r != nil {
		out.TLS, out.ClientTLS = r.ServerConfig(), r.ClientConfig
	}
	return out, r, nil
}

// clusterTLS loads the cluster port's certificate, key and CA: every node
// presents its certificate and accepts only peers the CA signed, both
// ways (mutual TLS, 1.3 only); the shared-secret handshake still runs
// inside. The files are reloaded as the client listeners' are (SIGHUP,
// tls.reload_interval): accepted connections get the new certificate in
// their handshake, dialed ones through the transport's ClientTLS, and
// open connections keep theirs.
func clusterTLS(t config.ClusterTLS, log *slog.Logger) (*certs.Reloader, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	r, err := certs.New(certs.Options{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile,
		ClientAuth: certs.ClientAuthRequired, MinVersion: tls.VersionTLS13, Log: log})
	if err != nil {
		return nil, fmt.Errorf("server: cluster TLS: %w", err)
	}
	return r, nil
}

// checkDataDirMode refuses a data directory used in the other mode: a
// cluster node's directory started as a single node (its definitions live
// in the cluster's Raft log, not in the store, so the single node would
// start empty and then delete the node's queue logs as orphans), and a
// single node's directory started as a new cluster node (its definitions
// would be ignored the same way; moving them into a cluster is not built).
func checkDataDirMode(cfg config.Config, st *store.Store) error {
	owner, err := cluster.Owner(vfs.Default, clusterDir(cfg.DataDir))
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if !cfg.Cluster.Enabled() {
		if owner != "" {
			return fmt.Errorf("server: %s holds cluster node %q's data: start it with --node-id %s and the cluster's settings (docs/clustering.md)", cfg.DataDir, owner, owner)
		}
		return nil
	}
	if owner != "" {
		return nil // cluster.New checks it is this node's
	}
	defs, err := st.LoadDefinitions()
	if err != nil {
		return err
	}
	if defs != nil || len(st.LoadCommands()) > 0 {
		return errors.New("server: " + cfg.DataDir + " holds a single node's definitions: a cluster node starts on its own fresh data directory (moving a single node's definitions into a cluster is not built)")
	}
	return nil
}

// raftStats maps the node's counters to the tern_raft_* metrics.
func raftStats(n *cluster.Node) mgmt.RaftStats {
	s := n.Stats()
	out := mgmt.RaftStats{Groups: s.Raft.Groups, GroupsLed: s.GroupsLed, Elections: s.Raft.Elections,
		LeaderChanges: s.Raft.LeaderChanges, ProposalsFailed: s.Raft.ProposalTimeouts + s.Raft.ProposalsBusy + s.Raft.ProposalsLeaderChanged,
		TicksDropped: s.Raft.TicksDropped}
	out.CommitLatency = histogram(s.CommitLatency)
	out.WALFsyncLatency = histogram(s.WALFsync)
	out.WALBatchEntries = histogram(s.WALBatch)
	for name, up := range s.Peers {
		out.Peers = append(out.Peers, mgmt.RaftPeer{Name: name, Reachable: up})
	}
	return out
}

func histogram(h cluster.HistogramSnapshot) mgmt.Histogram {
	out := mgmt.Histogram{Count: h.Count, Sum: h.Sum, Buckets: map[float64]uint64{}}
	for i, b := range h.Bounds {
		out.Buckets[b] = h.Cumulative[i]
	}
	return out
}

// The broker deletes a down or removed node's queues for the cluster
// (queue_lifecycle.go in internal/cluster).
var _ cluster.NodeQueues = (*broker.Broker)(nil)

// recoverDefinitions is a single node's recovery: the store's snapshot of
// the definitions and the commands logged since.
func (s *Server) recoverDefinitions() error {
	defs, err := loadDefinitions(s.Store)
	if err != nil {
		return err
	}
	if err := s.Broker.Restore(defs); err != nil {
		return err
	}
	cmds, err := loadCommands(s.Store)
	if err != nil {
		return err
	}
	return s.Broker.Replay(cmds)
}

// startCluster is a cluster node's recovery: the metadata group replays
// its log from the WAL into the broker (each quorum queue's group with
// it) and Start returns once this node has applied everything the group
// committed; then the queues this node held that cannot outlive its
// previous run (exclusive and transient ones) are deleted, before any
// client is served.
func (s *Server) startCluster() error {
	if err := s.node.Start(context.Background(), s.Broker); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Broker.DeleteLeftovers(ctx); err != nil {
		s.log.Warn("could not delete the exclusive and transient queues of this node's previous run; they stay until a restart", "err", err)
	}
	return nil
}

// closeNode stops the cluster node after a failed start.
func (s *Server) closeNode() {
	if s.node != nil {
		_ = s.node.Close()
		s.node = nil
	}
}

// awaitPromotion is a standby's wait for promotion: once the metadata
// group makes this node a voter (Node.Promote, from any node), it binds
// the client listeners and serves them until ctx ends.
func (s *Server) awaitPromotion(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for s.node.IsStandby() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	s.log.Info("promoted from standby to voter: serving clients")
	err := s.bindAMQP()
	if err == nil {
		err = s.bindMQTT()
	}
	if err != nil {
		s.log.Error("promoted, but the client listeners could not be bound: serving no clients", "err", err)
		errc <- err
		return
	}
	s.serveClients(ctx, wg, errc)
}

// notServing says why the node serves no clients ("" while it does), for
// /healthz: a load balancer must not send clients to a standby, whose
// AMQP and MQTT ports are closed until it is promoted.
func (s *Server) notServing() string {
	if s.serving.Load() {
		return ""
	}
	return "standby node: serves no AMQP or MQTT clients until promoted (tern cluster promote)"
}

// promote makes a standby a voter, for POST /api/cluster/promote.
func (s *Server) promote(ctx context.Context, node string) error {
	err := s.node.PromoteMember(ctx, node) // membership.go: recorded, then Promote
	if errors.Is(err, cluster.ErrUnknownNode) {
		return mgmt.BadRequest{Err: err}
	}
	return err
}

// clusterName is the cluster_name the AMQP handshake announces: the
// cluster-wide name on a cluster node (cluster.Node.ClusterName, as
// /api/overview reports it), "" (the AMQP default, "tern") on a single
// node.
func (s *Server) clusterName() string {
	if s.node == nil {
		return ""
	}
	return s.node.ClusterName()
}
