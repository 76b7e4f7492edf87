package broker

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRaft stands in for the cluster in quorum queue tests: it implements
// QuorumGroups for each node and ReplicatedLog for each replica. Each
// group has one goroutine that, for every proposal, appends it to the
// group's log and applies the log, in order, to every live replica, then
// calls the proposer's done with its own replica's result — what a Raft
// group does once an entry commits, without elections. The test chooses
// the leader and which nodes are live; a node that is not live neither
// proposes nor applies until it is live again, then catches up.
type fakeRaft struct {
	t testing.TB
	// work counts what is queued and not done: group tasks and the
	// backends' outbox items (quorumBackend.work). One counter, so that
	// work handing on work never shows zero in between.
	work   atomic.Int64
	mu     sync.Mutex
	groups map[string]*fakeGroup
	leader uint64
	live   map[uint64]bool
	// lie, while positive, makes the next commits report a failure to
	// their proposer although they applied (a Raft proposal that timed
	// out and committed anyway); each such commit counts it down.
	lie atomic.Int32
}

var errFakeNoLeader = errors.New("fakeraft: no leader reachable")

func newFakeRaft(t testing.TB, leader uint64) *fakeRaft {
	f := &fakeRaft{t: t, groups: map[string]*fakeGroup{}, leader: leader, live: map[uint64]bool{}}
	t.Cleanup(func() {
		f.mu.Lock()
		gs := make([]*fakeGroup, 0, len(f.groups))
		for _, g := range f.groups {
			gs = append(gs, g)
		}
		f.mu.Unlock()
		for _, g := range gs {
			g.stop()
		}
	})
	return f
}

func (f *fakeRaft) isLive(n uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	live, set := f.live[n]
	return !set || live
}

// setLive marks node n live or not; a node coming back catches up.
func (f *fakeRaft) setLive(n uint64, live bool) {
	f.mu.Lock()
	f.live[n] = live
	gs := f.groupList()
	f.mu.Unlock()
	for _, g := range gs {
		g.enqueue(g.catchUpAll)
	}
}

func (f *fakeRaft) groupList() []*fakeGroup {
	gs := make([]*fakeGroup, 0, len(f.groups))
	for _, g := range f.groups {
		gs = append(gs, g)
	}
	return gs
}

// setLeader makes n the leader of every group (0: none) and tells every
// live replica, after it has caught up.
func (f *fakeRaft) setLeader(n uint64) {
	f.mu.Lock()
	f.leader = n
	gs := f.groupList()
	f.mu.Unlock()
	for _, g := range gs {
		g.enqueue(func() {
			g.mu.Lock()
			g.leader = n
			g.mu.Unlock()
			g.catchUpAll()
			for _, r := range g.replicaList() {
				if f.isLive(r.node) {
					r.m.LeaderChanged(n, r.node == n)
				}
			}
		})
	}
}

// quiesce waits until every group has run all its work, including work
// that work created.
func (f *fakeRaft) quiesce() {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if f.work.Load() == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatal("fakeraft: groups still busy after 10s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func (f *fakeRaft) node(n uint64) QuorumGroups { return fakeNode{f: f, node: n} }

type fakeNode struct {
	f    *fakeRaft
	node uint64
}

// Open adds the node's replica to the group def.ID names.
func (fn fakeNode) Open(def QueueDef, m ReplicatedMachine) (ReplicatedLog, error) {
	f := fn.f
	f.mu.Lock()
	g := f.groups[def.ID]
	if g == nil {
		g = &fakeGroup{f: f, replicas: map[uint64]*fakeReplica{}, leader: f.leader, wake: make(chan struct{}, 1), done: make(chan struct{})}
		f.groups[def.ID] = g
		go g.run()
	}
	f.mu.Unlock()
	if qb, ok := m.(*quorumBackend); ok {
		qb.outMu.Lock()
		qb.work = func(d int64) { f.work.Add(d) }
		qb.outMu.Unlock()
	}
	r := &fakeReplica{g: g, node: fn.node, m: m}
	g.mu.Lock()
	if g.replicas[fn.node] != nil {
		g.mu.Unlock()
		return nil, errors.New("fakeraft: replica open twice")
	}
	g.replicas[fn.node] = r
	g.mu.Unlock()
	g.enqueue(func() {
		g.catchUp(r, 0, nil)
		if l := g.leaderNow(); l != 0 && f.isLive(fn.node) {
			m.LeaderChanged(l, l == fn.node)
		}
	})
	return r, nil
}

type fakeGroup struct {
	f    *fakeRaft
	wake chan struct{}
	done chan struct{}

	mu       sync.Mutex
	tasks    []func()
	busy     int // tasks queued or running
	stopped  bool
	replicas map[uint64]*fakeReplica
	entries  [][]byte
	leader   uint64
}

type fakeReplica struct {
	g       *fakeGroup
	node    uint64
	m       ReplicatedMachine
	applied int // entries applied; owned by the group's goroutine
	gone    bool
}

func (g *fakeGroup) enqueue(f func()) {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.tasks = append(g.tasks, f)
	g.busy++
	g.f.work.Add(1)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *fakeGroup) run() {
	defer close(g.done)
	for range g.wake {
		for {
			g.mu.Lock()
			if g.stopped {
				g.mu.Unlock()
				return
			}
			if len(g.tasks) == 0 {
				g.mu.Unlock()
				break
			}
			task := g.tasks[0]
			g.tasks = g.tasks[1:]
			g.mu.Unlock()
			task()
			g.mu.Lock()
			g.busy--
			g.mu.Unlock()
			g.f.work.Add(-1)
		}
	}
}

func (g *fakeGroup) stop() {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return
	}
	g.stopped = true
	g.mu.Unlock()
	close(g.wake)
	<-g.done
}

func (g *fakeGroup) leaderNow() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leader
}

func (g *fakeGroup) replicaList() []*fakeReplica {
	g.mu.Lock()
	defer g.mu.Unlock()
	rs := make([]*fakeReplica, 0, len(g.replicas))
	for _, r := range g.replicas {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *fakeReplica) int { return int(a.node) - int(b.node) })
	return rs
}

// catchUp applies to r the entries it has not applied, if its node is
// live; the result of entry want (1-based) is stored in res.
func (g *fakeGroup) catchUp(r *fakeReplica, want int, res *any) {
	if !g.f.isLive(r.node) {
		return
	}
	g.mu.Lock()
	entries := g.entries
	g.mu.Unlock()
	for r.applied < len(entries) && !r.gone {
		out := r.m.Apply(uint64(r.applied+1), entries[r.applied])
		r.applied++
		if r.applied == want && res != nil {
			*res = out
		}
	}
}

func (g *fakeGroup) catchUpAll() {
	for _, r := range g.replicaList() {
		g.catchUp(r, 0, nil)
	}
}

// commit runs on the group's goroutine: the entry is committed when the
// proposer and the leader are live (a quorum is the test's business).
func (g *fakeGroup) commit(from *fakeReplica, data []byte, done func(any, error)) {
	l := g.leaderNow()
	if l == 0 || from.gone || !g.f.isLive(from.node) || !g.f.isLive(l) {
		done(nil, errFakeNoLeader)
		return
	}
	g.mu.Lock()
	g.entries = append(g.entries, slices.Clone(data))
	idx := len(g.entries)
	g.mu.Unlock()
	var res any
	for _, r := range g.replicaList() {
		if r == from {
			g.catchUp(r, idx, &res)
		} else {
			g.catchUp(r, 0, nil)
		}
	}
	if g.f.lie.Add(-1) >= 0 {
		done(nil, errFakeNoLeader)
		return
	}
	g.f.lie.Add(1)
	done(res, nil)
}

// Propose implements ReplicatedLog.
func (r *fakeReplica) Propose(data []byte, done func(any, error)) {
	r.g.enqueue(func() { r.g.commit(r, data, done) })
}

// IsLeader implements ReplicatedLog.
func (r *fakeReplica) IsLeader() bool { return r.g.leaderNow() == r.node }

// Live implements ReplicatedLog.
func (r *fakeReplica) Live(node uint64) bool { return r.g.f.isLive(node) }

// Close implements ReplicatedLog.
func (r *fakeReplica) Close() {
	r.g.mu.Lock()
	delete(r.g.replicas, r.node)
	r.g.mu.Unlock()
	r.g.enqueue(func() { r.gone = true })
}

// Delete implements ReplicatedLog.
func (r *fakeReplica) Delete() { r.Close() }

// hold stops every group before its next task until the returned release
// is called, so a test can queue proposals that apply later.
func (f *fakeRaft) hold() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	gs := f.groupList()
	f.mu.Unlock()
	for _, g := range gs {
		g.enqueue(func() { <-ch })
	}
	return func() { close(ch) }
}
