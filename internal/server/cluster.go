//go:build clusterwip

package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tern-broker/tern/internal/cluster"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/mgmt"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/vfs"
)

// clusterDir is where a cluster node keeps its identity and WAL.
func clusterDir(dataDir string) string { return filepath.Join(dataDir, "cluster") }

// clusterConfig translates the [cluster] settings into the node's Config.
func clusterConfig(cfg config.Config, log *slog.Logger) (cluster.Config, error) {
	peers, err := cfg.Cluster.ParsedPeers()
	if err != nil {
		return cluster.Config{}, err
	}
	out := cluster.Config{Dir: clusterDir(cfg.DataDir), FS: vfs.Default, Secret: cfg.Cluster.Secret,
		Logger: log.With("component", "cluster")}
	for _, p := range peers {
		m := cluster.Member{ID: p.ID, Name: p.Name, Addr: p.Addr, Standby: p.Standby}
		out.Members = append(out.Members, m)
		if p.Name == cfg.Cluster.NodeID {
			out.Self = m
		}
	}
	if out.TLS, err = clusterTLS(cfg.Cluster.TLS); err != nil {
		return cluster.Config{}, err
	}
	return out, nil
}

// clusterTLS loads the cluster port's certificate, key and CA: every node
// presents its certificate and accepts only peers the CA signed, both
// ways (mutual TLS); the shared-secret handshake still runs inside.
func clusterTLS(t config.ClusterTLS) (*tls.Config, error) {
	if t.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: cluster TLS: %w", err)
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("server: cluster TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("server: cluster TLS: %s holds no PEM certificate", t.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
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
		LeaderChanges: s.Raft.LeaderChanges, ProposalsFailed: s.Raft.ProposalTimeouts}
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
