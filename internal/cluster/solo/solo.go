package solo

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/raftnode"
	"github.com/tern-broker/tern/internal/cluster/wal"
	"github.com/tern-broker/tern/internal/vfs"
)

// self is this node's replica id in every group: a one-voter group needs
// one, and no other node ever sees it.
const self raftnode.NodeID = 1

// Config is what Groups needs; zero fields take the defaults noted.
type Config struct {
	// Dir is where the WAL goes (Dir/wal): DATA_DIR/quorum.
	Dir    string
	FS     vfs.FS       // default vfs.Default
	Logger *slog.Logger // default: discard
	Clock  clock.Clock  // default the system clock
	// TickInterval is Raft's tick (default 100 ms); ProposalTimeout
	// bounds one proposal (default 5 s).
	TickInterval    time.Duration
	ProposalTimeout time.Duration
	// SnapshotEntries is how many applied entries trigger a group's
	// snapshot (default raftnode's, 10,000); tests make it small.
	SnapshotEntries uint64
}

// Groups implements broker.QuorumGroups for a single node. The WAL and
// the Raft host are opened by the first Open.
type Groups struct {
	cfg Config

	mu   sync.Mutex
	wal  *wal.WAL
	host *raftnode.Host
	open map[uint64]string // open groups: the queue each is for
	// stopping holds the groups closed or deleted whose goroutine may still
	// run: RemoveOrphans must not take their state from under them.
	stopping map[uint64]bool
	closed   bool
	// deleting counts deleted groups still removing their state (Delete).
	deleting sync.WaitGroup
}

// New returns Groups that open nothing yet.
func New(cfg Config) *Groups {
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Clock = clock.Or(cfg.Clock)
	return &Groups{cfg: cfg, open: map[uint64]string{}, stopping: map[uint64]bool{}}
}

// ErrClosed is returned by Open after Close.
var ErrClosed = errors.New("solo: closed")

// walDir is where the quorum queues' WAL lives.
func (s *Groups) walDir() string { return filepath.Join(s.cfg.Dir, "wal") }

// walLocked opens the WAL on first use.
func (s *Groups) walLocked() (*wal.WAL, error) {
	if s.wal != nil {
		return s.wal, nil
	}
	w, err := wal.Open(s.cfg.FS, s.walDir(), wal.Options{Logger: s.cfg.Logger.With("component", "wal")})
	if err != nil {
		return nil, fmt.Errorf("solo: quorum queue log: %w", err)
	}
	s.wal = w
	return w, nil
}

// hostLocked opens the WAL and starts the Raft host on first use.
func (s *Groups) hostLocked() (*raftnode.Host, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.host != nil {
		return s.host, nil
	}
	w, err := s.walLocked()
	if err != nil {
		return nil, err
	}
	s.host = raftnode.NewHost(raftnode.HostConfig{
		ID: self, Clock: s.cfg.Clock, Logger: s.cfg.Logger.With("component", "raft"),
		TickInterval: s.cfg.TickInterval, ProposalTimeout: s.cfg.ProposalTimeout,
		SnapshotEntries: s.cfg.SnapshotEntries,
		NewStorage:      func(group uint64) raftnode.Storage { return w.Group(group) },
	})
	s.cfg.Logger.Info("quorum queues on a single node: each is a Raft group of one voter", "wal", s.walDir())
	return s.host, nil
}

// GroupID names the group of the quorum queue with id queueID: the
// FNV-64a hash of the id, as a cluster names it, clear of raftnode's
// reserved id.
func GroupID(queueID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("quorum/" + queueID))
	if g := h.Sum64(); g != 0 && g != raftnode.NodeHeartbeatGroup {
		return g
	}
	return 1
}

// Open implements broker.QuorumGroups: it starts the queue's one-voter
// group, or restarts it from the WAL, and has this node stand for
// election at once.
func (s *Groups) Open(def broker.QueueDef, m broker.ReplicatedMachine) (broker.ReplicatedLog, error) {
	gid := GroupID(def.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.hostLocked()
	if err != nil {
		return nil, err
	}
	if other, ok := s.open[gid]; ok {
		return nil, fmt.Errorf("solo: quorum queue %s in vhost %s: its group %#x is already open for %s", def.Name, def.VHost, gid, other)
	}
	if s.stopping[gid] {
		return nil, fmt.Errorf("solo: quorum queue %s in vhost %s: its group %#x is still stopping", def.Name, def.VHost, gid)
	}
	g, err := h.Start(gid, []raftnode.NodeID{self}, nil, m)
	if err != nil {
		return nil, fmt.Errorf("solo: quorum queue %s in vhost %s: %w", def.Name, def.VHost, err)
	}
	s.open[gid] = def.VHost + "/" + def.Name
	g.Wake() // apply what the log committed now, not at the first tick
	s.waitReplayed(g, def)
	g.Campaign() // its fsync is not waited for here
	return &replicatedLog{s: s, id: gid, g: g}, nil
}

// replayWait bounds how long Open waits for a restarted group to apply
// what its log committed.
const replayWait = time.Minute

// waitReplayed waits until a restarted group has applied every entry its
// log had committed, so the queue opens with its messages (a declare-ok
// right after a restart counts them) and its consumers of the previous
// run known. A new group has nothing to replay. The broker's Apply never
// takes the vhost's lock, which the caller holds.
func (s *Groups) waitReplayed(g *raftnode.Group, def broker.QueueDef) {
	commit := g.Status().Commit
	start := time.Now()
	for g.Status().Applied < commit {
		select {
		case <-g.Done():
			return
		case <-time.After(2 * time.Millisecond):
		}
		if time.Since(start) > replayWait {
			s.cfg.Logger.Warn("quorum queue still replaying its log: opening it meanwhile", "vhost", def.VHost, "queue", def.Name,
				"applied", g.Status().Applied, "commit", commit)
			return
		}
	}
}

// Close stops every group and closes the WAL; the state stays for the
// next start.
func (s *Groups) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	h, w := s.host, s.wal
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	if h != nil {
		h.Close()
	}
	s.deleting.Wait() // before the WAL closes: their removal writes to it
	return w.Close()
}

// RemoveOrphans removes from the WAL the state of groups no open queue
// has: a crash between a quorum queue's deletion being logged in the
// definitions and its group's removal leaves one. The server calls it
// once recovery has opened the group of every quorum queue it knows. A
// node whose data directory has no quorum log opens nothing. A group still
// stopping is left alone (review7 F1): recovery may replay a queue's
// declare and then its delete, whose group is stopped on a goroutine, and
// removing its state under it made raft panic; Delete removes it itself.
//
// With no quorum queue open (none left: review7 F5) it opens only the
// log, no Raft host, and once the log holds no group it deletes it (and
// stops the host, if the replay of a declare and a delete started it), so
// the next start finds no log and opens nothing.
func (s *Groups) RemoveOrphans() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, nil
	}
	if s.wal == nil {
		if names, err := s.cfg.FS.List(s.walDir()); err != nil || len(names) == 0 {
			return 0, nil // no log: no quorum queue here
		}
		if _, err := s.walLocked(); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, id := range s.wal.Groups() {
		if _, ok := s.open[id]; ok || s.stopping[id] {
			continue
		}
		if err := s.wal.Group(id).Remove(); err != nil {
			return n, fmt.Errorf("solo: removing the state of a deleted quorum queue's group %#x: %w", id, err)
		}
		n++
	}
	// No queue open and none stopping (every group's removal done): also a
	// start that replayed the last quorum queue's declare and then its
	// delete, which started the host.
	if len(s.open) == 0 && len(s.stopping) == 0 && len(s.wal.Groups()) == 0 {
		if s.host != nil {
			s.host.Close()
			s.host = nil
		}
		return n, s.dropLogLocked()
	}
	return n, nil
}

// dropLogLocked closes the WAL, which holds no group and serves no Raft
// host, and deletes its files: every group's removal is durable in it, so
// nothing is lost, and a start without a log opens nothing. Segments go
// oldest first, each deletion made durable before the next, so a crash
// half-way leaves a log without a gap, which the next start cleans up
// again. The next quorum queue opens a new log.
func (s *Groups) dropLogLocked() error {
	w := s.wal
	s.wal = nil
	if err := w.Close(); err != nil {
		return fmt.Errorf("solo: closing the log of no quorum queue: %w", err)
	}
	dir := s.walDir()
	names, err := s.cfg.FS.List(dir)
	if err != nil {
		return fmt.Errorf("solo: %w", err)
	}
	for _, name := range names {
		if err := s.cfg.FS.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("solo: deleting the log of no quorum queue: %w", err)
		}
		if err := s.cfg.FS.SyncDir(dir); err != nil {
			return fmt.Errorf("solo: %w", err)
		}
	}
	s.cfg.Logger.Info("no quorum queue left: deleted the quorum queue log", "wal", dir, "files", len(names))
	return nil
}

// Stats are the WAL's counters (zero before the first quorum queue).
func (s *Groups) Stats() wal.Stats {
	s.mu.Lock()
	w := s.wal
	s.mu.Unlock()
	if w == nil {
		return wal.Stats{}
	}
	return w.Stats()
}

// replicatedLog is broker.ReplicatedLog over one one-voter group.
type replicatedLog struct {
	s  *Groups
	id uint64
	g  *raftnode.Group
}

func (r *replicatedLog) Propose(data []byte, done func(any, error)) { r.g.ProposeAsync(data, done) }
func (r *replicatedLog) IsLeader() bool                             { return r.g.IsLeader() }

// Live: every consumer is on this node, which answers.
func (r *replicatedLog) Live(uint64) bool { return true }

func (r *replicatedLog) Close() {
	mine := r.forget()
	r.g.Close()
	if mine {
		r.stopped()
	}
}

// Delete removes the group's state for good. The broker calls it with the
// vhost's lock held, and the group's goroutine may be waiting for that
// lock: the group stops and its storage goes on a goroutine of its own,
// which Close waits for.
func (r *replicatedLog) Delete() {
	mine := r.forget()
	r.s.deleting.Add(1)
	go func() {
		defer r.s.deleting.Done()
		if err := r.g.Delete(); err != nil {
			r.s.cfg.Logger.Warn("could not remove a deleted quorum queue's Raft state", "group", r.id, "err", err)
		}
		if mine {
			r.stopped()
		}
	}()
}

// forget moves the group from open to stopping; false if a Close or
// Delete before this one did.
func (r *replicatedLog) forget() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if _, ok := r.s.open[r.id]; !ok {
		return false
	}
	delete(r.s.open, r.id)
	r.s.stopping[r.id] = true
	return true
}

// stopped is called once the group's goroutine has ended.
func (r *replicatedLog) stopped() {
	r.s.mu.Lock()
	delete(r.s.stopping, r.id)
	r.s.mu.Unlock()
}

var _ broker.QuorumGroups = (*Groups)(nil)
