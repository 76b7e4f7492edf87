package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// Errors returned by Host and Group.
var (
	ErrClosed          = errors.New("raftnode: group or host closed")
	ErrGroupExists     = errors.New("raftnode: group already started on this host")
	ErrProposalTimeout = errors.New("raftnode: proposal not applied within the proposal timeout (it may still commit later)")
	ErrBusy            = errors.New("raftnode: too many proposals queued on the group (its goroutine is held up, e.g. by a slow disk); not proposed")
	ErrTransferFailed  = errors.New("raftnode: leadership transfer did not complete")
	ErrLeaderChanged   = errors.New("raftnode: the group's leader changed before the proposal committed (it may still commit)")
	ErrNoRequests      = errors.New("raftnode: this node does not serve cluster requests")
)

// maxUnknownLogged bounds the groups the Host remembers having logged an
// unknown-group message for (one line per group, not per message).
const maxUnknownLogged = 1024

// Host runs this node's Raft groups: it routes incoming Raft messages to
// them and ticks all of them from one ticker.
type Host struct {
	cfg   HostConfig
	log   *slog.Logger
	stats hostStats
	live  liveness

	mu       sync.RWMutex
	groups   map[uint64]*Group
	starting map[uint64]bool // being opened by Start
	closed   bool
	unknown  map[uint64]struct{} // groups an unknown-group line was logged for
	ticker   clock.Timer
	// While quiet (QuietUnknownGroups), unknown groups are counted, not
	// logged at WARN: quietGroups (bounded by maxUnknownLogged) and
	// quietMsgs.
	quiet       bool
	quietGroups map[uint64]struct{}
	quietMsgs   int
}

// nodeName is id's name for a log line ("" unknown, or none set).
func (h *Host) nodeName(id NodeID) string {
	if h.cfg.NodeName == nil || id == 0 {
		return ""
	}
	return h.cfg.NodeName(id)
}

// groupName is the group's name for a log line ("" when none is set).
func (h *Host) groupName(id uint64) string {
	if h.cfg.GroupName == nil {
		return ""
	}
	return h.cfg.GroupName(id)
}

// NewHost returns a Host; its ticker runs until Close.
func NewHost(cfg HostConfig) *Host {
	cfg.setDefaults()
	h := &Host{
		cfg:      cfg,
		log:      cfg.Logger.With("node", cfg.ID),
		groups:   map[uint64]*Group{},
		starting: map[uint64]bool{},
		unknown:  map[uint64]struct{}{},
	}
	h.stats.init()
	h.live.heard = map[NodeID]*atomic.Uint64{}
	h.mu.Lock()
	h.ticker = cfg.Clock.AfterFunc(cfg.TickInterval, h.tick)
	h.mu.Unlock()
	return h
}

// ID is this node's replica id.
func (h *Host) ID() NodeID { return h.cfg.ID }

// tick is the Host's one ticker: it hands every group one tick (a counter
// and a wake-up; the group's goroutine runs RawNode.Tick) and re-arms.
func (h *Host) tick() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return
	}
	h.live.now.Add(1)
	for _, g := range h.groups {
		// A quiet group is not even woken while the nodes it depends on
		// are heard from (quiesce.go).
		if g.quietPub.Load() && h.quietHolds(g) {
			continue
		}
		g.addTick()
	}
	h.sendNodeHeartbeats()
	h.ticker.Reset(h.cfg.TickInterval)
}

// Start starts group with sm as its state machine. A group whose storage
// holds state restarts from it (voters and learners are then ignored: the
// configuration comes from the log); a new group with voters bootstraps
// with that configuration; a new group without voters waits, empty, for
// the leader to send it a snapshot (a replica being added).
func (h *Host) Start(group uint64, voters, learners []NodeID, sm StateMachine) (*Group, error) {
	if h.cfg.NewStorage == nil {
		return nil, errors.New("raftnode: HostConfig.NewStorage is nil")
	}
	if group == NodeHeartbeatGroup {
		return nil, errors.New("raftnode: group id 2^64-1 is reserved for node heartbeats")
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := h.groups[group]; ok || h.starting[group] {
		h.mu.Unlock()
		return nil, fmt.Errorf("group %d: %w", group, ErrGroupExists)
	}
	h.starting[group] = true
	h.mu.Unlock()
	// Opening and bootstrapping wait for storage: outside the lock, so
	// one group's fsync does not stall message routing for the others.
	g, err := newGroup(h, group, h.cfg.NewStorage(group), voters, learners, sm)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.starting, group)
	if err != nil {
		return nil, fmt.Errorf("group %d: %w", group, err)
	}
	if h.closed {
		return nil, ErrClosed
	}
	h.groups[group] = g
	delete(h.unknown, group)
	go g.run()
	return g, nil
}

// Group returns a running group, or nil.
func (h *Host) Group(group uint64) *Group {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.groups[group]
}

// Groups returns the ids of the running groups.
func (h *Host) Groups() []uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	ids := make([]uint64, 0, len(h.groups))
	for id := range h.groups {
		ids = append(ids, id)
	}
	return ids
}

func (h *Host) remove(g *Group) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.groups[g.id] == g {
		delete(h.groups, g.id)
	}
}

// HandleRaft implements transport.Handler: it queues msgs on their group.
// A message for a group this node does not host is dropped with one log
// line per group (the sender's Raft retries, or the group is gone).
func (h *Host) HandleRaft(from NodeID, group transport.Group, msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	h.live.saw(from)
	if group == NodeHeartbeatGroup {
		return
	}
	h.mu.RLock()
	g, closed := h.groups[group], h.closed
	h.mu.RUnlock()
	if closed {
		return // shutting down: the groups are going, not unknown
	}
	if g != nil {
		g.deliver(msgs)
		return
	}
	h.stats.unknownGroup.Add(uint64(len(msgs)))
	if t := msgs[0].GetType(); t == raftpb.MsgPreVote || t == raftpb.MsgVote {
		// A new group's first campaign (CampaignFirst) may reach a node
		// that has not created the group yet: expected, and the
		// campaign is repeated.
		h.log.Debug("raft vote request for a group this node does not host (yet): refused", "group", group, "from", from)
		return
	}
	h.mu.Lock()
	if h.quiet {
		_, seen := h.quietGroups[group]
		if !seen && len(h.quietGroups) < maxUnknownLogged {
			h.quietGroups[group] = struct{}{}
		}
		h.quietMsgs += len(msgs)
		h.mu.Unlock()
		if !seen {
			h.log.Debug("raft message for a group this node does not host (yet, while starting): refused", "group", group, "from", from,
				"type", msgs[0].GetType().String())
		}
		return
	}
	_, logged := h.unknown[group]
	if !logged && len(h.unknown) < maxUnknownLogged {
		h.unknown[group] = struct{}{}
	}
	h.mu.Unlock()
	if !logged {
		h.log.Warn("raft message for a group this node does not host: refused", "group", group, "from", from, "type", msgs[0].GetType().String())
	}
}

// QuietUnknownGroups(true) makes messages for groups this node does not
// host a DEBUG line, counted, rather than a WARN per group: a node that is
// starting (a new node joining, one catching up after a restart) is sent
// messages for every quorum queue's group before the metadata that
// creates those groups here has arrived — expected, and with a thousand
// queues a thousand WARN lines. QuietUnknownGroups(false), once the node
// caught up, logs one line with what was refused meanwhile; from then on
// an unknown group is a WARN again (a real problem: a peer that kept a
// group this node deleted, or a node of another layout).
func (h *Host) QuietUnknownGroups(on bool) {
	h.mu.Lock()
	was := h.quiet
	h.quiet = on
	groups, msgs := len(h.quietGroups), h.quietMsgs
	if on && h.quietGroups == nil {
		h.quietGroups = map[uint64]struct{}{}
	}
	if !on {
		h.quietGroups, h.quietMsgs = nil, 0
	}
	h.mu.Unlock()
	if was && !on && msgs > 0 {
		h.log.Info("refused raft messages for groups this node did not host yet while it was starting (expected before the metadata creating them arrives)",
			"groups", groups, "messages", msgs)
	}
}

// HandleRequest implements transport.Handler by passing the request to
// HostConfig.Requests.
func (h *Host) HandleRequest(ctx context.Context, from NodeID, kind uint8, body []byte) ([]byte, error) {
	if h.cfg.Requests == nil {
		return nil, ErrNoRequests
	}
	return h.cfg.Requests.HandleRequest(ctx, from, kind, body)
}

// HandleNotify implements transport.Handler by passing the message to
// HostConfig.Requests (dropped without one).
func (h *Host) HandleNotify(from NodeID, kind uint8, body []byte) {
	if h.cfg.Requests != nil {
		h.cfg.Requests.HandleNotify(from, kind, body)
	}
}

// Close stops the ticker and every group (their storage stays).
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	h.ticker.Stop()
	groups := make([]*Group, 0, len(h.groups))
	for _, g := range h.groups {
		groups = append(groups, g)
	}
	h.mu.Unlock()
	for _, g := range groups {
		g.Close()
	}
}

var _ transport.Handler = (*Host)(nil)
