package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/forward"
	"github.com/tern-broker/tern/internal/cluster/meta"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/transport"
	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

// Config is what a Node needs; internal/server builds it from the
// configuration's [cluster] settings.
type Config struct {
	// Self is this node; Members the cluster's initial membership, Self
	// included (every node is given the same list).
	Self    Member
	Members []Member
	// Dir is the node's cluster directory, DATA_DIR/cluster: its
	// identity file and the WAL (Dir/wal).
	Dir    string
	FS     vfs.FS
	Secret []byte
	// TLS, when set, wraps every cluster connection (transport.TCPConfig).
	TLS *tls.Config
	// ClientTLS, when set, is each dial's client config
	// (transport.TCPConfig): a reloaded certificate.
	ClientTLS func() *tls.Config
	// Logger receives the node's lines, each with a component: cluster,
	// cluster-transport, raft, wal, metadata.
	Logger *slog.Logger
	Clock  clock.Clock

	// TickInterval is Raft's tick (default 100 ms: a leader's loss is
	// noticed after ElectionTicks of them, 1 s); ProposalTimeout bounds
	// one proposal (default 5 s).
	TickInterval    time.Duration
	ElectionTicks   int
	ProposalTimeout time.Duration
	// StartTimeout bounds Start's wait for the metadata group (default
	// 2 minutes: the other nodes of a cluster being started by hand).
	StartTimeout time.Duration
	// Join: this node joins a running cluster (membership.go): it
	// bootstraps no group and waits to be added (Node.AddNode).
	Join bool
	// DownGrace is how long the metadata leader waits, having heard
	// nothing from a member, before deleting its transient queues
	// (queue_lifecycle.go; default DefaultDownGrace).
	DownGrace time.Duration
}

// Node is this process's membership in a cluster: the WAL every group
// writes to, the transport to the peers, the Raft host with the metadata
// group and one group per quorum queue. It implements broker.MetadataLog
// (Propose) and, through Quorum, broker.QuorumGroups.
type Node struct {
	cfg  Config
	log  *slog.Logger
	wal  *wal.WAL
	tr   *transport.TCP
	host *raftnode.Host
	// fwd forwards publishes, consumes and gets of classic queues and
	// streams to the node that holds them, and serves other nodes' (forward).
	fwd  *forward.Forwarder
	meta atomic.Pointer[raftnode.Group]
	// started is set once Start has caught up: before that the node serves
	// no clients, so no one waits for it to apply (visible.go).
	started atomic.Bool
	// fsyncs and batches are the WAL's fsync latency (seconds) and the
	// entries each fsync covered (wal.Options.OnSync).
	fsyncs, batches *Histogram

	mu     sync.Mutex
	queues map[uint64]queueGroup // open quorum groups
	// labels names the open quorum groups for raftnode's log lines
	// (groupLabel), read on a group's goroutine without n.mu.
	labels sync.Map   // uint64 → string
	ms     membership // the replicated membership (membership.go)
	closed bool
	stop   chan struct{}
	wg     sync.WaitGroup
	// deleting counts deleted quorum groups still stopping (Delete).
	deleting sync.WaitGroup
	removed  map[uint64]bool // members the transport dropped (syncPeers)
	nq       NodeQueues      // Start's target, if it deletes a node's queues
	// lost (capacity 1) wakes the queue sweeper: a peer's connection
	// closed, perhaps because its process died (crashed.go).
	lost chan struct{}

	// Cluster identity (clusterid.go): this data directory's draw, the
	// Raft gate's verdicts per peer, the checks it asks for, and the
	// first refusal's reason.
	drawn   string
	idmu    sync.Mutex
	ids     atomic.Pointer[idState]
	verify  chan uint64
	refused atomic.Pointer[string]
	// notIn: members that refuse this node as unknown (not_member.go).
	notIn notMember
	// savedCluster is the cluster id in ClusterFile.
	savedCluster atomic.Value
	// takeover closes this node's MQTT connection of a client id for
	// another node's CONNECT (takeover.go); nil: no MQTT server.
	takeover atomic.Pointer[ClientTakeover]
	tomu     sync.Mutex
	tolinks  map[transport.NodeID]*takeoverLink // per peer (takeover.go)
}

// queueGroup is an open quorum queue group and what it replicates.
type queueGroup struct {
	vhost, name string
	voters      []uint64
	size        int // x-quorum-initial-group-size (0: the default)
	target      int // x-quorum-target-group-size (0: none; grow.go)
	g           *raftnode.Group
}

var _ broker.MetadataLog = (*Node)(nil)

// New claims the cluster directory for this node, opens the WAL, listens
// on the cluster address and starts the Raft host. No group runs until
// Start (the metadata group) and Quorum().Open (each quorum queue).
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks <= 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.ProposalTimeout <= 0 {
		cfg.ProposalTimeout = 5 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	if cfg.DownGrace <= 0 {
		cfg.DownGrace = DefaultDownGrace
	}
	if !slices.ContainsFunc(cfg.Members, func(m Member) bool { return m.ID == cfg.Self.ID }) {
		return nil, fmt.Errorf("cluster: node %s is not among the members", cfg.Self.Name)
	}
	if err := ClaimDir(cfg.FS, cfg.Dir, cfg.Self.Name); err != nil {
		return nil, err
	}
	drawn, err := loadDraw(cfg.FS, cfg.Dir)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("component", "cluster"), queues: map[uint64]queueGroup{}, stop: make(chan struct{}),
		fsyncs: NewHistogram(fsyncBounds...), batches: NewHistogram(batchBounds...), drawn: drawn, verify: make(chan uint64, 16),
		lost: make(chan struct{}, 1)}
	saved, err := readSmall(cfg.FS, cfg.Dir, ClusterFile)
	if err != nil {
		return nil, err
	}
	n.savedCluster.Store(saved)
	w, err := wal.Open(cfg.FS, filepath.Join(cfg.Dir, "wal"), wal.Options{
		Logger: cfg.Logger.With("component", "wal"),
		OnSync: func(entries int, took time.Duration) {
			n.fsyncs.Observe(took.Seconds())
			n.batches.Observe(float64(entries))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.wal = w
	d := &dispatch{}
	peers := map[transport.NodeID]string{}
	for _, m := range cfg.Members {
		if m.ID != cfg.Self.ID {
			peers[m.ID] = m.Addr
		}
	}
	n.tr, err = transport.NewTCP(transport.TCPConfig{
		Self: cfg.Self.ID, ListenAddr: cfg.Self.Addr, Peers: peers, Secret: cfg.Secret, TLS: cfg.TLS, ClientTLS: cfg.ClientTLS,
		Handler: d, Logger: cfg.Logger.With("component", "cluster-transport"),
		OnRemoved:    n.toldRemoved, // removed_notice.go
		OnDisconnect: n.peerLost,    // crashed.go
	})
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n.host = raftnode.NewHost(raftnode.HostConfig{
		ID: cfg.Self.ID, Transport: n.tr, Clock: cfg.Clock, Logger: cfg.Logger.With("component", "raft"),
		TickInterval: cfg.TickInterval, ElectionTicks: cfg.ElectionTicks, HeartbeatTicks: 1,
		ProposalTimeout: cfg.ProposalTimeout,
		NewStorage:      func(group uint64) raftnode.Storage { return w.Group(group) },
		NodeName:        func(id raftnode.NodeID) string { return n.memberName(id) },
		GroupName:       n.groupLabel, // queue_placement.go
	})
	n.host.QuietUnknownGroups(true) // until Start caught up: its queues' groups do not exist here yet
	d.host.Store(n.host)
	n.fwd = forward.New(forward.Config{Self: cfg.Self.ID, Transport: n.tr,
		Logger: cfg.Logger.With("component", "forward"), Clock: cfg.Clock, NodeName: n.memberName})
	d.fwd.Store(n.fwd)
	d.node.Store(n)
	n.wg.Add(1)
	go n.verifyPeers()
	return n, nil
}

// Forwarder is the node's forwarding of classic queues and streams held by
// other nodes (broker.Replication.Forward); the server gives it the broker
// with SetBroker once the broker exists.
func (n *Node) Forwarder() *forward.Forwarder { return n.fwd }

// dispatch is the transport's Handler until and while the host runs: the
// transport must exist before the host (the host sends through it), and
// the host before the transport can deliver to it.
type dispatch struct {
	host atomic.Pointer[raftnode.Host]
	fwd  atomic.Pointer[forward.Forwarder]
	node atomic.Pointer[Node]
}

func (d *dispatch) HandleRaft(from transport.NodeID, group transport.Group, msgs []*raftpb.Message) {
	if n := d.node.Load(); n == nil || !n.peerGate(from) {
		return // not checked yet, or a node of another cluster (clusterid.go)
	}
	if h := d.host.Load(); h != nil {
		h.HandleRaft(from, group, msgs)
	}
}

func (d *dispatch) HandleRequest(ctx context.Context, from transport.NodeID, kind uint8, body []byte) ([]byte, error) {
	if forward.Owns(kind) {
		if f := d.fwd.Load(); f != nil {
			return f.HandleRequest(ctx, from, kind, body)
		}
		return nil, errors.New("cluster: forwarding is not ready")
	}
	if kind == kindIdentity {
		if n := d.node.Load(); n != nil {
			return n.handleIdentity(from, body)
		}
		return nil, errors.New("cluster: the node is not ready")
	}
	if kind == kindMetaApplied {
		if n := d.node.Load(); n != nil {
			return n.handleMetaApplied(ctx, body)
		}
		return nil, errors.New("cluster: the node is not ready")
	}
	if kind == kindClientTakeover {
		if n := d.node.Load(); n != nil {
			return n.handleTakeover(ctx, body)
		}
		return nil, errors.New("cluster: the node is not ready")
	}
	if h := d.host.Load(); h != nil {
		return h.HandleRequest(ctx, from, kind, body)
	}
	return nil, raftnode.ErrNoRequests
}

func (d *dispatch) HandleNotify(from transport.NodeID, kind uint8, body []byte) {
	// Forwarded deliveries are handled here, on the transport's reader
	// and in order: the forwarder's loss check relies on replies
	// travelling behind the notifies they follow.
	if forward.Owns(kind) {
		if f := d.fwd.Load(); f != nil {
			f.HandleNotify(from, kind, body)
		}
		return
	}
	if h := d.host.Load(); h != nil {
		h.HandleNotify(from, kind, body)
	}
}

// ID is this node's Raft replica id.
func (n *Node) ID() uint64 { return n.cfg.Self.ID }

// voting splits the members into voters and learners (standby nodes).
func voting(members []Member) (voters, learners []uint64) {
	for _, m := range members {
		if m.Standby {
			learners = append(learners, m.ID)
		} else {
			voters = append(voters, m.ID)
		}
	}
	slices.Sort(voters)
	slices.Sort(learners)
	return voters, learners
}

// Start starts the metadata group with target (the broker) as what it
// applies to, and returns once this node has applied everything the
// group committed before Start: it proposes a barrier and waits for it to
// apply here, so the definitions a client sees on this node are the
// cluster's. It waits at most StartTimeout for a leader and a quorum,
// logging what it waits for.
func (n *Node) Start(ctx context.Context, target meta.Target) error {
	voters, learners := n.startConfig()
	g, err := n.host.Start(MetadataGroup, voters, learners, n.memberMachine(meta.New(target, n.cfg.Logger.With("component", "metadata"))))
	if err != nil {
		return fmt.Errorf("cluster: metadata group: %w", err)
	}
	n.meta.Store(g)
	if nq, ok := target.(NodeQueues); ok {
		n.mu.Lock()
		n.nq = nq
		n.mu.Unlock()
	}
	start := time.Now()
	logged := start.Add(-time.Minute) // the first wait is logged at once
	ctx, cancel := context.WithTimeout(ctx, n.cfg.StartTimeout)
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	n.wg.Add(1)
	go n.checkWhileStarting(ctx, cancelCause)
	for attempt := 0; ; attempt++ {
		if err := n.RemovedError(); err != nil {
			return err
		}
		if r := n.refusal(); r != "" {
			return fmt.Errorf("cluster: refusing to start: %s", r)
		}
		pctx, pcancel := context.WithTimeout(ctx, n.cfg.ProposalTimeout)
		_, err := g.Propose(pctx, n.startEntry())
		pcancel()
		if err == nil {
			st := g.Status()
			n.log.Info("metadata group caught up", "leader", n.memberName(st.Leader), "term", st.Term,
				"applied", st.Applied, "took", time.Since(start).Round(time.Millisecond))
			n.host.QuietUnknownGroups(false) // the groups of the queues it applied are open
			break
		}
		if r := n.refusal(); r != "" {
			return fmt.Errorf("cluster: refusing to start: %s", r)
		}
		if err := n.RemovedError(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			var nm errNotAMember
			if errors.As(context.Cause(ctx), &nm) {
				return fmt.Errorf("cluster: refusing to start after %v: %s", time.Since(start).Round(time.Second), nm.hint)
			}
			if names := n.notCountedIn(); len(names) > 0 {
				return fmt.Errorf("cluster: the metadata group has no leader or quorum after %v: %s",
					time.Since(start).Round(time.Second), n.notMemberHint(names))
			}
			return fmt.Errorf("cluster: the metadata group has no leader or quorum after %v (%s): start the other nodes, check that they reach each other on their cluster addresses and share the secret",
				time.Since(start).Round(time.Second), n.reachability())
		}
		if time.Since(logged) >= 5*time.Second {
			logged = time.Now()
			n.log.Info("waiting for the metadata group's leader and quorum", "leader", n.memberName(g.Leader()),
				"peers", n.reachability(), "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, time.Second)):
		}
	}
	// One more check now that this node applied the cluster's membership
	// (the founders record names the cluster).
	if _, r := n.checkIdentities(ctx); r != "" {
		return fmt.Errorf("cluster: refusing to start: %s", r)
	}
	n.logPeersDiffer() // peers_check.go
	n.started.Store(true)
	n.syncPeers()
	n.wg.Add(4)
	go n.watchIdentities()
	go n.rebalance()
	go n.reconcileMembers()
	go n.sweepQueues() // queue_lifecycle.go
	return nil
}

// reachability says which peers this node is connected to, for logs.
func (n *Node) reachability() string {
	st := n.tr.Stats()
	var up, down []string
	for _, m := range n.members() {
		if m.ID == n.cfg.Self.ID {
			continue
		}
		if st.Peers[m.ID].Connected {
			up = append(up, m.Name)
		} else {
			down = append(down, m.Name)
		}
	}
	return fmt.Sprintf("connected to %v, not to %v", up, down)
}

// memberName names a replica id ("" for 0, the id in hex for a stranger).
func (n *Node) memberName(id uint64) string {
	if id == 0 {
		return ""
	}
	for _, m := range n.knownMembers() {
		if m.ID == id {
			return m.Name
		}
	}
	return fmt.Sprintf("%#x", id)
}

// Propose implements broker.MetadataLog: it replicates c through the
// metadata group and returns once this node and every live, connected
// member (waitVisible, at most visibleWait) applied it, with the error
// applying it gave (a refused declare) or the reason it did not commit.
// A proposal lost in a leader change (raftnode.ErrProposalTimeout) is
// proposed again while ctx lasts: applying a definition command twice
// changes nothing (Broker.ApplyReplicated), so a retry cannot do harm.
// Without a deadline in ctx, one of metadataTimeout applies.
func (n *Node) Propose(ctx context.Context, c broker.Command) error {
	g := n.meta.Load()
	if g == nil {
		return errors.New("cluster: the metadata group is not running yet")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, metadataTimeout)
		defer cancel()
	}
	data := meta.EncodeCommand(c)
	for {
		res, err := g.Propose(ctx, data)
		if errors.Is(err, raftnode.ErrProposalTimeout) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return fmt.Errorf("cluster: the definition change did not commit: %w", err)
		}
		index, res := unwrapApplied(res)
		if err, ok := res.(error); ok && err != nil {
			return err
		}
		if missing := n.waitVisible(ctx, g, index); len(missing) > 0 {
			names := make([]string, len(missing))
			for i, id := range missing {
				names[i] = n.memberName(id)
			}
			n.log.Warn("a definition change is answered before these nodes applied it: a client of theirs may not see it for a moment",
				"index", index, "nodes", names)
		}
		return nil
	}
}

// metadataTimeout bounds a metadata proposal whose caller set no deadline.
const metadataTimeout = 15 * time.Second

// Close stops every group, the host, the transport and the WAL; the
// groups' state stays for the next start.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.stop)
	n.mu.Unlock()
	n.wg.Wait()
	n.fwd.Close() // requeues, here, what other nodes' consumers held
	n.host.Close()
	n.deleting.Wait() // before the WAL closes: their removal writes to it
	err := n.tr.Close()
	if werr := n.wal.Close(); err == nil {
		err = werr
	}
	return err
}

// The group id QuorumGroupID keeps clear of is raftnode's.
var (
	_ [raftnode.NodeHeartbeatGroup - heartbeatGroup]struct{}
	_ [heartbeatGroup - raftnode.NodeHeartbeatGroup]struct{}
)
