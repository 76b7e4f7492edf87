package clustertest

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/transport/memnet"
	"github.com/tern-broker/tern/internal/vfs"
)

// NodeID names a node.
type NodeID = raftnode.NodeID

// StorageFactory opens node's Raft storage on its file system: at New and
// at every Restart, with the file system as the node's crash left it.
type StorageFactory func(node NodeID, fs *vfs.MemFS) (NodeStorage, error)

// NodeStorage is one node's open Raft storage.
type NodeStorage struct {
	// Open returns group's storage: the Host's NewStorage.
	Open func(group uint64) raftnode.Storage
	// Groups, if set, lists the groups the storage holds state for; Restart
	// restarts exactly those (as a node restarts the groups its WAL
	// recovered). Nil: Restart restarts every group started on the node.
	Groups func() []uint64
	// Close closes the storage (after a Crash: the dead process's handle).
	Close func() error
}

// Options tune a Cluster; zero values take the defaults noted.
type Options struct {
	Seed uint64 // memnet's fault decisions (default 1)
	// Group is started on every node at New, all nodes voting (default 1).
	Group uint64
	// TickEvery is the real time between two ticks of the fake clock
	// (default 5 ms: 20× faster than the 100 ms production tick).
	TickEvery time.Duration
	// Host adjusts each node's HostConfig (snapshot sizes, timeouts).
	Host func(*raftnode.HostConfig)
	// Storage opens each node's storage (default: MemoryStorage per group,
	// kept across crashes).
	Storage StorageFactory
	// LogLevel of the nodes' logs, written to the test's output (default Info).
	LogLevel slog.Level
	// TornTail, if set, is passed to vfs.MemFS.Crash at every Crash: how
	// many of a file's unsynced bytes survive (a torn write).
	TornTail func(path string, unsynced int) int
}

// member is one node of the Cluster.
type member struct {
	ID NodeID

	c      *Cluster
	host   *raftnode.Host // nil while down
	fs     *vfs.MemFS
	store  NodeStorage
	ep     *memnet.Endpoint
	sms    map[uint64]*ListSM
	groups map[uint64]bool // started here: restarted by Restart
}

// Cluster is N in-process nodes. Methods are for the test goroutine.
type Cluster struct {
	T     testing.TB
	Clock *clock.Fake
	Net   *memnet.Network

	opts    Options
	tick    time.Duration
	nodes   map[NodeID]*member
	ids     []NodeID
	mem     map[NodeID]map[uint64]*raftnode.MemoryStorage
	memMu   sync.Mutex
	paused  atomic.Bool
	stop    chan struct{}
	stopped chan struct{}

	termsMu sync.Mutex
	terms   map[uint64]map[uint64]NodeID // group → term → leader seen
	termErr error
}

// New starts n nodes (ids 1..n) and Options.Group on all of them; t's
// Cleanup stops everything.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Group == 0 {
		opts.Group = 1
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = 5 * time.Millisecond
	}
	c := &Cluster{
		T:       t,
		Clock:   clock.NewFake(time.Unix(1_700_000_000, 0)),
		opts:    opts,
		tick:    100 * time.Millisecond,
		nodes:   map[NodeID]*member{},
		mem:     map[NodeID]map[uint64]*raftnode.MemoryStorage{},
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		terms:   map[uint64]map[uint64]NodeID{},
	}
	if c.opts.Storage == nil {
		c.opts.Storage = c.memoryStorage
	}
	c.Net = memnet.New(c.Clock, opts.Seed)
	voters := make([]NodeID, n)
	for i := range n {
		voters[i] = NodeID(i + 1)
	}
	c.ids = voters
	for _, id := range voters {
		nd := &member{ID: id, c: c, fs: vfs.NewCrashable(), sms: map[uint64]*ListSM{}, groups: map[uint64]bool{}}
		c.nodes[id] = nd
		if err := nd.up(); err != nil {
			t.Fatalf("node %d: %v", id, err)
		}
	}
	t.Cleanup(c.Close)
	go c.drive()
	for _, id := range voters {
		if _, err := c.StartGroup(id, opts.Group, voters, nil); err != nil {
			t.Fatalf("node %d: start group %d: %v", id, opts.Group, err)
		}
	}
	return c
}

// memoryStorage is the default StorageFactory.
func (c *Cluster) memoryStorage(node NodeID, _ *vfs.MemFS) (NodeStorage, error) {
	open := func(group uint64) raftnode.Storage {
		c.memMu.Lock()
		defer c.memMu.Unlock()
		m := c.mem[node]
		if m == nil {
			m = map[uint64]*raftnode.MemoryStorage{}
			c.mem[node] = m
		}
		if m[group] == nil {
			m[group] = raftnode.NewMemoryStorage()
		}
		return m[group]
	}
	return NodeStorage{Open: open, Close: func() error { return nil }}, nil
}

// drive advances the fake clock by one tick every TickEvery of real time.
func (c *Cluster) drive() {
	defer close(c.stopped)
	t := time.NewTicker(c.opts.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if !c.paused.Load() {
				c.Clock.Advance(c.tick)
			}
		}
	}
}

// PauseTime stops the clock driver; ResumeTime restarts it. Advance the
// Clock by hand in between for exact control.
func (c *Cluster) PauseTime()  { c.paused.Store(true) }
func (c *Cluster) ResumeTime() { c.paused.Store(false) }

// up starts the node's Host on its file system and endpoint.
func (nd *member) up() error {
	c := nd.c
	store, err := c.opts.Storage(nd.ID, nd.fs)
	if err != nil {
		return err
	}
	nd.store = store
	ep := c.Net.Endpoint(nd.ID)
	nd.ep = ep
	cfg := raftnode.HostConfig{
		ID:           nd.ID,
		Transport:    ep,
		Clock:        c.Clock,
		Logger:       slog.New(slog.NewTextHandler(c.T.Output(), &slog.HandlerOptions{Level: c.opts.LogLevel})),
		TickInterval: c.tick,
		// 20 s on a clock 20× faster than real time is 1 s of real time:
		// room for a loaded machine running -race, still quick for the
		// tests that wait for timeouts.
		ProposalTimeout: 20 * time.Second,
		NewStorage:      store.Open,
	}
	if c.opts.Host != nil {
		c.opts.Host(&cfg)
	}
	nd.host = raftnode.NewHost(cfg)
	ep.SetHandler(nd.host)
	return nil
}

// AddNode starts one more node (the next id) with no groups: start them
// with StartGroup(id, group, nil, nil) before adding it to a group.
func (c *Cluster) AddNode() NodeID {
	c.T.Helper()
	id := NodeID(len(c.ids) + 1)
	nd := &member{ID: id, c: c, fs: vfs.NewCrashable(), sms: map[uint64]*ListSM{}, groups: map[uint64]bool{}}
	c.nodes[id] = nd
	c.ids = append(c.ids, id)
	if err := nd.up(); err != nil {
		c.T.Fatalf("node %d: %v", id, err)
	}
	return id
}

// IDs returns the node ids.
func (c *Cluster) IDs() []NodeID { return slices.Clone(c.ids) }

// FS returns node id's file system (after a Crash, the one it restarts on).
func (c *Cluster) FS(id NodeID) *vfs.MemFS { return c.node(id).fs }

// Host returns node id's Host, nil while it is down.
func (c *Cluster) Host(id NodeID) *raftnode.Host { return c.node(id).host }

func (c *Cluster) node(id NodeID) *member {
	nd := c.nodes[id]
	if nd == nil {
		c.T.Fatalf("clustertest: no node %d", id)
	}
	return nd
}

// Group returns node id's replica of group, nil while down or not started.
func (c *Cluster) Group(id NodeID, group uint64) *raftnode.Group {
	h := c.node(id).host
	if h == nil {
		return nil
	}
	return h.Group(group)
}

// SM returns node id's state machine for group (it survives only until a
// Crash: Restart builds a new one from the node's storage).
func (c *Cluster) SM(id NodeID, group uint64) *ListSM { return c.node(id).sms[group] }

// StartGroup starts group on node id with a fresh ListSM (voters nil: a
// replica being added, or a restart from storage).
func (c *Cluster) StartGroup(id NodeID, group uint64, voters, learners []NodeID) (*raftnode.Group, error) {
	nd := c.node(id)
	if nd.host == nil {
		return nil, fmt.Errorf("node %d is down", id)
	}
	sm := &ListSM{}
	var g atomic.Pointer[raftnode.Group]
	sm.onLead = func(leader NodeID, local bool) {
		if gr := g.Load(); local && gr != nil {
			c.noteLeader(group, gr.Status().Term, leader)
		}
	}
	gr, err := nd.host.Start(group, voters, learners, sm)
	if err != nil {
		return nil, err
	}
	g.Store(gr)
	if gr.IsLeader() {
		c.noteLeader(group, gr.Status().Term, id)
	}
	nd.sms[group] = sm
	nd.groups[group] = true
	return gr, nil
}

// noteLeader records that leader led group in term; a second leader for
// one term is a safety violation CheckElections reports.
func (c *Cluster) noteLeader(group, term uint64, leader NodeID) {
	c.termsMu.Lock()
	defer c.termsMu.Unlock()
	m := c.terms[group]
	if m == nil {
		m = map[uint64]NodeID{}
		c.terms[group] = m
	}
	if prev, ok := m[term]; ok && prev != leader && c.termErr == nil {
		c.termErr = fmt.Errorf("group %d term %d has two leaders: %d and %d", group, term, prev, leader)
	}
	m[term] = leader
}

// CheckElections fails the test if any term of any group had two leaders;
// it returns how many terms had a leader, over all groups.
func (c *Cluster) CheckElections() int {
	c.T.Helper()
	c.termsMu.Lock()
	defer c.termsMu.Unlock()
	if c.termErr != nil {
		c.T.Fatal(c.termErr)
	}
	n := 0
	for _, m := range c.terms {
		n += len(m)
	}
	return n
}

// Up lists the nodes that are running.
func (c *Cluster) Up() []NodeID {
	var up []NodeID
	for _, id := range c.ids {
		if c.nodes[id].host != nil {
			up = append(up, id)
		}
	}
	return up
}

// Crash stops node id at once: its endpoint and Host stop, its file system
// becomes what a crash leaves (synced data, plus Options.TornTail's torn
// tails), its storage is closed, its state machines are gone.
func (c *Cluster) Crash(id NodeID) {
	nd := c.node(id)
	if nd.host == nil {
		return
	}
	c.crash(nd, func() *vfs.MemFS { return nd.fs.Crash(c.opts.TornTail) })
}

// CrashWith is Crash with the node restarting on image: what a power cut
// left at an earlier moment (vfs.MemFS.Crash or CrashSectors taken by a
// fault hook just before a file operation, after which the node's file
// system failed every operation, so nothing after the cut was
// acknowledged).
func (c *Cluster) CrashWith(id NodeID, image *vfs.MemFS) {
	nd := c.node(id)
	if nd.host == nil {
		return
	}
	c.crash(nd, func() *vfs.MemFS { return image })
}

func (c *Cluster) crash(nd *member, image func() *vfs.MemFS) {
	_ = nd.ep.Close()
	nd.host.Close()
	nd.host = nil
	nd.fs = image()
	if err := nd.store.Close(); err != nil {
		c.T.Logf("node %d: closing storage after crash: %v", nd.ID, err)
	}
	nd.sms = map[uint64]*ListSM{}
}

// Restart starts a crashed node again and restarts each group it ran from
// its storage, with fresh state machines.
func (c *Cluster) Restart(id NodeID) {
	c.T.Helper()
	if err := c.TryRestart(id); err != nil {
		c.T.Fatalf("node %d: restart: %v", id, err)
	}
}

// TryRestart is Restart returning the error (storage that refuses to
// open, a group that does not start) instead of failing the test; the
// node stays down if its storage did not open.
func (c *Cluster) TryRestart(id NodeID) error {
	nd := c.node(id)
	if nd.host != nil {
		return fmt.Errorf("node %d is running", id)
	}
	if err := nd.up(); err != nil {
		return err
	}
	groups := slices.Sorted(maps.Keys(nd.groups))
	if nd.store.Groups != nil {
		groups = nd.store.Groups()
		for _, g := range groups {
			if !nd.groups[g] {
				return fmt.Errorf("storage recovered group %d, never started on node %d", g, id)
			}
		}
	}
	for _, group := range groups {
		if _, err := c.StartGroup(id, group, nil, nil); err != nil {
			return fmt.Errorf("restart group %d: %w", group, err)
		}
	}
	return nil
}

// Partition, Heal and Isolate pass to the network.
func (c *Cluster) Partition(sides ...[]NodeID) { c.Net.Partition(sides...) }
func (c *Cluster) Heal()                       { c.Net.Heal() }
func (c *Cluster) Isolate(id NodeID)           { c.Net.Isolate(id) }

// Close stops every node and the clock driver.
func (c *Cluster) Close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	<-c.stopped
	for _, id := range c.ids {
		_ = c.nodes[id].ep.Close()
	}
	for _, id := range c.ids {
		if nd := c.nodes[id]; nd.host != nil {
			nd.host.Close()
			nd.host = nil
			_ = nd.store.Close()
		}
	}
}
