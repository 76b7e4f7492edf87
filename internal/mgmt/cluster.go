package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RaftStats are a cluster node's tern_raft_* metrics.
type RaftStats struct {
	// Groups this node hosts a replica of, and those it leads.
	Groups, GroupsLed int
	// Elections this node started (campaigns), and leader changes it saw,
	// over all its groups.
	Elections, LeaderChanges uint64
	// ProposalsFailed are proposals that did not commit (no quorum before
	// their timeout, the group closed).
	ProposalsFailed uint64
	// TicksDropped are Raft ticks groups did not run because their
	// goroutine fell behind by more than an election timeout's worth
	// (raftnode's tick burst bound): a stall signal.
	TicksDropped uint64
	// CommitLatency is seconds from a proposal on this node to its
	// completion (committed on a quorum and applied here).
	CommitLatency Histogram
	// WALFsyncLatency is seconds per WAL fsync; WALBatchEntries is the
	// Raft entries (of every group) one fsync made durable.
	WALFsyncLatency, WALBatchEntries Histogram
	// Peers are the other nodes and whether this node can reach them.
	Peers []RaftPeer
}

// RaftPeer is another node of the cluster.
type RaftPeer struct {
	Name      string
	Reachable bool
}

// Histogram is a Prometheus histogram's state: Buckets maps each upper
// bound to the count of observations at or below it (cumulative).
type Histogram struct {
	Count   uint64
	Sum     float64
	Buckets map[float64]uint64
}

var (
	raftGroupsDesc          = prometheus.NewDesc("tern_raft_groups", "Raft groups this node hosts a replica of.", nil, nil)
	raftGroupsLedDesc       = prometheus.NewDesc("tern_raft_groups_led", "Raft groups this node leads.", nil, nil)
	raftElectionsDesc       = prometheus.NewDesc("tern_raft_elections_total", "Elections this node started (campaigns), all groups.", nil, nil)
	raftLeaderChangesDesc   = prometheus.NewDesc("tern_raft_leader_changes_total", "Leader changes this node observed, all groups.", nil, nil)
	raftProposalsFailedDesc = prometheus.NewDesc("tern_raft_proposals_failed_total", "Proposals that did not commit (no quorum in time, group closed).", nil, nil)
	raftTicksDroppedDesc    = prometheus.NewDesc("tern_raft_ticks_dropped_total", "Raft ticks not run because a group's goroutine fell an election timeout behind (a stall).", nil, nil)
	raftCommitDesc          = prometheus.NewDesc("tern_raft_commit_latency_seconds", "Time from a proposal on this node to its commit on a quorum and apply here.", nil, nil)
	raftFsyncDesc           = prometheus.NewDesc("tern_raft_wal_fsync_seconds", "Duration of the node WAL's fsyncs.", nil, nil)
	raftBatchDesc           = prometheus.NewDesc("tern_raft_wal_batch_entries", "Raft entries, of all groups, made durable by one WAL fsync.", nil, nil)
	raftPeerDesc            = prometheus.NewDesc("tern_raft_peer_reachable", "1 while this node has a connection to the peer.", []string{"node"}, nil)
)

type raftCollector struct{ stats func() RaftStats }

func (c raftCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{raftGroupsDesc, raftGroupsLedDesc, raftElectionsDesc, raftLeaderChangesDesc,
		raftProposalsFailedDesc, raftTicksDroppedDesc, raftCommitDesc, raftFsyncDesc, raftBatchDesc, raftPeerDesc} {
		ch <- d
	}
}

func (c raftCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(raftGroupsDesc, prometheus.GaugeValue, float64(s.Groups))
	ch <- prometheus.MustNewConstMetric(raftGroupsLedDesc, prometheus.GaugeValue, float64(s.GroupsLed))
	ch <- prometheus.MustNewConstMetric(raftElectionsDesc, prometheus.CounterValue, float64(s.Elections))
	ch <- prometheus.MustNewConstMetric(raftLeaderChangesDesc, prometheus.CounterValue, float64(s.LeaderChanges))
	ch <- prometheus.MustNewConstMetric(raftProposalsFailedDesc, prometheus.CounterValue, float64(s.ProposalsFailed))
	ch <- prometheus.MustNewConstMetric(raftTicksDroppedDesc, prometheus.CounterValue, float64(s.TicksDropped))
	for _, h := range []struct {
		d *prometheus.Desc
		h Histogram
	}{{raftCommitDesc, s.CommitLatency}, {raftFsyncDesc, s.WALFsyncLatency}, {raftBatchDesc, s.WALBatchEntries}} {
		ch <- prometheus.MustNewConstHistogram(h.d, h.h.Count, h.h.Sum, h.h.Buckets)
	}
	for _, p := range s.Peers {
		v := 0.0
		if p.Reachable {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(raftPeerDesc, prometheus.GaugeValue, v, p.Name)
	}
}

// clusterStatus serves GET /api/cluster: the document src.Cluster returns.
func clusterStatus(w http.ResponseWriter, src Sources) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, src.Cluster())
}

// BadRequest marks an error the client caused (a node that does not
// exist): answered 400 instead of 503.
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

// promote serves POST /api/cluster/promote {"node": "n4"}: the standby
// becomes a voter (and starts serving clients); it answers with the
// cluster's status once every group committed the change.
func promote(w http.ResponseWriter, r *http.Request, src Sources) {
	var body struct {
		Node string `json:"node"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Node == "" {
		if tooLarge(w, err) {
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"node": "NAME"}`})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := src.Promote(ctx, body.Node); err != nil {
		status := http.StatusServiceUnavailable
		var br BadRequest
		if errors.As(err, &br) {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, src.Cluster())
}
