package raftnode

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// maxInbox bounds the Raft messages queued on a group between two turns
// of its goroutine; beyond it messages are dropped (Raft retries them).
const maxInbox = 8192

// bootstrapIndex and bootstrapTerm are where a new group's log starts: a
// snapshot holding only the configuration, so every replica of a new
// group starts from the same state without Raft's ConfChange bootstrap.
const (
	bootstrapIndex = 1
	bootstrapTerm  = 1
)

// Group is one replica of one Raft group. Its goroutine owns the RawNode;
// other goroutines talk to it through the inbox (messages, proposals,
// control functions) and read what it publishes (leader, status).
type Group struct {
	h       *Host
	id      uint64
	storage Storage
	sm      StateMachine
	log     *slog.Logger
	rn      *raft.RawNode

	// The inbox, guarded by mu.
	mu        sync.Mutex
	msgs      []*raftpb.Message
	props     []proposal
	propBytes int // data bytes of props (bounded by maxPropBytes)
	fns       []func()
	closed    bool
	leaderCh  chan struct{} // closed and replaced at every leader change
	wake      chan struct{} // cap 1: the goroutine has work
	ticks     atomic.Int64  // ticks not yet run
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	seq atomic.Uint64 // the last proposal sequence used

	// Owned by the goroutine.
	tick         uint64              // ticks run so far
	pending      map[uint64]*pending // proposals of this node not yet applied, by sequence
	expiry       []expiring          // pending in proposal order, for timeouts
	retry        []uint64            // pending that Raft dropped (no leader yet): proposed again
	leaderNew    bool                // the leader changed this turn: retry dropped proposals
	quiet        bool                // quiescent: ticks are not run (quiesce.go)
	quiesceAsked bool                // a quiesce heartbeat arrived this turn
	quiesceFrom  NodeID              // its sender and term: quiet only for the current leader
	quiesceTerm  uint64
	idle         uint64 // leader: ticks without commit progress
	idleCommit   uint64
	saved        chan error        // Save's done
	applied      uint64            // last applied index
	snapIndex    uint64            // index of the last snapshot made or restored
	snapRetry    uint64            // applied index before which a failed snapshot is not retried
	snapFails    uint64            // snapshots failed in a row (snapshotFailed's back-off)
	snapDue      bool              // a configuration change was applied: snapshot now (maybeSnapshot)
	snapBytes    uint64            // entry bytes applied since the last snapshot
	snapSize     uint64            // the last snapshot's size made here (0: none yet this run)
	snapBusy     bool              // a snapshot is being recorded off the goroutine (snapshot.go)
	snapWG       sync.WaitGroup    // that recording, waited for at shutdown
	confState    *raftpb.ConfState // as of applied
	lead         NodeID            // leader as last seen
	state        raft.StateType    // role as last seen
	entryBufs    [][]byte          // pooled entries proposed, until the next Ready is sent (propbuf.go)
	spareMsgs    []*raftpb.Message // double buffers for the inbox
	spareProp    []proposal
	snapsSent    []NodeID
	failed       bool   // storage or state machine failed: the group stopped working
	eager        int    // ticks CampaignFirst still campaigns at while no leader is known
	raftTerm     uint64 // Raft's term as of the last Ready that carried a HardState
	knownLead    NodeID // the last leader known, and its term (failHanded)
	knownTerm    uint64
	transferTo   NodeID // the last transfer this node asked for as the leader, and its term
	transferTerm uint64

	// Published for other goroutines.
	leader   atomic.Uint64
	term     atomic.Uint64
	commit   atomic.Uint64
	applIdx  atomic.Uint64
	view     atomic.Pointer[Status]
	quietPub atomic.Bool
}

// proposal is a ProposeAsync or membership change queued for the goroutine.
type proposal struct {
	seq    uint64
	data   []byte               // the caller's payload (normal entries): the header is added in the entry
	cc     *raftpb.ConfChangeV2 // or a configuration change (header in Context)
	done   func(any, error)
	start  time.Time
	queued uint64 // Host tick at which it was queued (expireQueued)
	// failFast: fail with ErrLeaderChanged once another leader or term
	// than the one it was handed to is known (ProposeAsyncFailFast).
	failFast bool
}

type pending struct {
	proposal
	deadline uint64 // tick
	// The leader and term Raft handed it to (this node as leader, or a
	// MsgProp to a known leader); 0 while it waits in g.retry or was
	// never accepted by Raft.
	handedLead NodeID
	handedTerm uint64
}

type expiring struct{ seq, deadline uint64 }

func newGroup(h *Host, id uint64, st Storage, voters, learners []NodeID, sm StateMachine) (*Group, error) {
	g := &Group{
		h: h, id: id, storage: st, sm: sm,
		log:      h.log.With("group", id),
		leaderCh: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		pending:  map[uint64]*pending{},
		saved:    make(chan error, 1),
	}
	// Sequences start at a random point so a restarted node's proposals
	// never match its previous life's entries still in the log.
	var b [8]byte
	_, _ = rand.Read(b[:])
	g.seq.Store(binary.LittleEndian.Uint64(b[:]) >> 1)

	hs, cs, err := st.InitialState()
	if err != nil {
		return nil, err
	}
	last, err := st.LastIndex()
	if err != nil {
		return nil, err
	}
	fresh := raft.IsEmptyHardState(hs) && len(cs.GetVoters()) == 0 && len(cs.GetLearners()) == 0 && last == 0
	if fresh && len(voters) > 0 {
		cs = &raftpb.ConfState{Voters: voters, Learners: learners}
		snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
			ConfState: cs, Index: new(uint64(bootstrapIndex)), Term: new(uint64(bootstrapTerm)),
		}}
		hs := &raftpb.HardState{Term: new(uint64(bootstrapTerm)), Commit: new(uint64(bootstrapIndex))}
		ch := make(chan error, 1)
		st.Save(hs, nil, snap, func(err error) { ch <- err })
		if err := <-ch; err != nil {
			return nil, err
		}
	}
	snap, err := st.Snapshot()
	if err != nil {
		return nil, err
	}
	g.applied = snap.GetMetadata().GetIndex()
	g.snapIndex = g.applied
	g.confState = cs
	if data, ok, err := unwrapSnapshot(snap.GetData()); err != nil {
		return nil, err
	} else if ok {
		if err := sm.Restore(data); err != nil {
			return nil, err
		}
	}
	g.applIdx.Store(g.applied)
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                        h.cfg.ID,
		ElectionTick:              h.cfg.ElectionTicks,
		HeartbeatTick:             h.cfg.HeartbeatTicks,
		Storage:                   st,
		Applied:                   g.applied,
		MaxSizePerMsg:             h.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           h.cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: h.cfg.MaxUncommittedBytes,
		CheckQuorum:               true,
		PreVote:                   true,
		StepDownOnRemoval:         true,
		Logger:                    raftLogger{g.log},
	})
	if err != nil {
		return nil, err
	}
	g.rn = rn
	bs := rn.BasicStatus()
	g.term.Store(bs.HardState.GetTerm())
	g.raftTerm = bs.HardState.GetTerm()
	g.commit.Store(bs.HardState.GetCommit())
	g.publishView()
	if !fresh {
		g.log.Info("raft group restarted from storage", "applied", g.applied, "term", bs.HardState.GetTerm())
	}
	return g, nil
}

// ID is the group's id.
func (g *Group) ID() uint64 { return g.id }

func (g *Group) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

func (g *Group) addTick() {
	g.ticks.Add(1)
	g.signal()
}

// deliver queues Raft messages from the transport.
func (g *Group) deliver(msgs []*raftpb.Message) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if len(g.msgs)+len(msgs) > maxInbox {
		g.mu.Unlock()
		g.h.stats.inboxDropped.Add(uint64(len(msgs)))
		return
	}
	g.msgs = append(g.msgs, msgs...)
	g.mu.Unlock()
	g.h.stats.msgsReceived.Add(uint64(len(msgs)))
	g.signal()
}

// submit runs f on the group's goroutine; false if the group is closed.
func (g *Group) submit(f func()) bool {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return false
	}
	g.fns = append(g.fns, f)
	g.mu.Unlock()
	g.signal()
	return true
}

func (g *Group) run() {
	defer close(g.done)
	defer g.shutdown()
	for {
		select {
		case <-g.stop:
			return
		case <-g.wake:
		}
		if !g.turn() {
			return
		}
	}
}

// turn handles what the inbox holds, then every Ready Raft has.
func (g *Group) turn() bool {
	g.mu.Lock()
	msgs, props, fns := g.msgs, g.props, g.fns
	g.msgs, g.props, g.fns = g.spareMsgs, g.spareProp, nil
	g.propBytes = 0
	g.mu.Unlock()

	g.stepAll(msgs)
	if len(props) > 0 || len(fns) > 0 {
		g.unquiesce()
	}
	g.proposeAll(props)
	clear(props)
	g.spareProp = props[:0]
	for _, f := range fns {
		f()
	}
	g.runTicks()
	for g.rn.HasReady() {
		if !g.handleReady() {
			return false
		}
	}
	g.maybeQuiesce()
	if g.leaderNew && len(g.retry) > 0 && g.lead != 0 {
		g.retryDropped() // a leader just became known; otherwise once a tick
	}
	g.leaderNew = false
	return true
}

// stepAll steps Raft messages from the inbox into Raft and gives the
// slice back for reuse.
func (g *Group) stepAll(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if isQuiesce(m) && m.GetType() == raftpb.MsgHeartbeat {
			g.quiesceAsked = true
			g.quiesceFrom, g.quiesceTerm = m.GetFrom(), m.GetTerm()
		} else if isQuiesce(m) {
			// Raft reads a heartbeat response's context as a read-index
			// position: the answer to a quiesce heartbeat must not carry ours.
			m.Context = nil
		} else if wakes(m) {
			g.quiesceAsked = false
			g.unquiesce()
		}
		// Errors here are a response from a peer no longer in the
		// configuration, or a local message type from the network:
		// nothing to do but drop them.
		_ = g.rn.Step(m)
	}
	clear(msgs)
	g.spareMsgs = msgs[:0]
}

// maxTickBurst is how many ticks of Raft a group that fell behind (its
// goroutine held up: a long apply, a starved CPU) runs at once: fewer
// than an election timeout. All the messages that arrived meanwhile are
// stepped before the burst, so they count only for the first
// election-timeout boundary it crosses: a leader running a whole
// timeout's worth more would run a second check-quorum with every
// follower marked inactive by the first and step down from a healthy
// quorum, and a follower would campaign against the leader whose
// heartbeats it has just stepped. Raft's ticks beyond are dropped: its
// timers then run late by the stall, which delays noticing a dead node
// and never decides anything unsafe. The group's own tick count (for
// proposal timeouts) counts them all.
func (g *Group) maxTickBurst() int64 { return int64(max(1, g.h.cfg.ElectionTicks-1)) }

// runTicks runs the ticks the Host has given the group since the last
// run (at most maxTickBurst of them for Raft).
func (g *Group) runTicks() {
	n := g.ticks.Swap(0)
	if n <= 0 {
		return
	}
	g.tick += uint64(n)
	if burst := g.maxTickBurst(); n > burst {
		g.h.stats.ticksDropped.Add(uint64(n - burst))
		n = burst
	}
	if !g.tickQuiet() {
		for range n {
			g.rn.Tick()
		}
		g.noteIdle(uint64(n))
	}
	g.campaignAgain()
	g.onTick()
}

// handleReady runs one Ready: persist, send, apply, Advance.
func (g *Group) handleReady() bool {
	held := len(g.entryBufs) // proposed before this Ready: sent with it
	rd := g.rn.Ready()
	if rd.SoftState != nil {
		g.onSoftState(*rd.SoftState)
	}
	snap := rd.Snapshot
	if raft.IsEmptySnap(snap) {
		snap = nil
	}
	hs := rd.HardState
	if raft.IsEmptyHardState(hs) {
		hs = nil
	}
	msgs := g.sendEarly(rd.Messages)
	if hs != nil || len(rd.Entries) > 0 || snap != nil {
		g.storage.Save(hs, rd.Entries, snap, g.onSaved)
		if !g.awaitSave() {
			return false
		}
	}
	g.send(msgs)
	g.releaseEntryBufs(held)
	if snap != nil && !g.restore(snap) {
		return false
	}
	if hs != nil {
		g.raftTerm = hs.GetTerm()
	}
	g.apply(rd.CommittedEntries)
	// After the apply: a proposal this Ready commits completes normally.
	g.failHanded(g.lead, g.raftTerm)
	g.rn.Advance(rd)
	for _, to := range g.snapsSent {
		// The transport gives no delivery receipt: report the snapshot
		// sent, so Raft probes the follower and sends it again if it
		// did not arrive.
		g.rn.ReportSnapshot(to, raft.SnapshotFinish)
	}
	g.snapsSent = g.snapsSent[:0]
	if hs != nil {
		g.term.Store(hs.GetTerm())
		g.commit.Store(hs.GetCommit())
	}
	g.applIdx.Store(g.applied)
	g.maybeSnapshot()
	return true
}

func (g *Group) onSaved(err error) { g.saved <- err }

// expireQueued fails, with ErrProposalTimeout, the proposals that have
// waited in the inbox for the proposal timeout: while a save hangs they
// are not taken, and their publishers should hear, as Raft's pending
// proposals do, rather than wait for the disk.
func (g *Group) expireQueued() {
	now, ticks := g.h.live.now.Load(), g.h.cfg.proposalTicks()
	g.mu.Lock()
	var expired []proposal
	kept := g.props[:0]
	for _, p := range g.props {
		if p.queued+ticks <= now {
			expired = append(expired, p)
			g.propBytes -= len(p.data)
		} else {
			kept = append(kept, p)
		}
	}
	clear(g.props[len(kept):])
	g.props = kept
	g.mu.Unlock()
	for _, p := range expired {
		g.h.stats.proposalTimeouts.Add(1)
		p.done(nil, ErrProposalTimeout)
	}
}

// awaitSave waits for the Ready's save to be durable. Meanwhile it steps
// the Raft messages that arrive and runs the ticks that fall due, as
// etcd's raft node does between Ready and Advance: however long the fsync
// takes, a follower's election timer sees its leader's heartbeats and a
// leader's check-quorum its followers' responses when they arrive, not
// after the save (a slow fsync under load otherwise made a healthy
// quorum look gone, and leadership moved). Proposals and control
// functions wait for the next turn. What Raft answers goes out after the
// save, in the next Ready.
func (g *Group) awaitSave() bool {
	woken := false
	for {
		select {
		case err := <-g.saved:
			if woken {
				g.signal() // proposals or functions may be waiting
			}
			if err != nil {
				g.fail("raft state could not be persisted", err)
				return false
			}
			return true
		case <-g.stop:
			return false
		case <-g.wake:
			woken = true
			g.mu.Lock()
			msgs := g.msgs
			g.msgs = g.spareMsgs
			g.mu.Unlock()
			g.stepAll(msgs)
			g.runTicks()
			g.expireQueued()
		}
	}
}

// sendEarly sends the messages of msgs that need nothing of this Ready
// persisted and returns the others, to send once it is.
//
// A leader's appends and heartbeats go out before its own fsync, which
// then runs while the followers write theirs (section 10.2.1 of the Raft
// thesis; etcd does the same): the entries commit on a quorum that may
// not include the leader yet, and the leader applies them only once its
// own save is done. Its term and vote were persisted in an earlier Ready
// (it could not win an election before its vote requests went out).
//
// A heartbeat response acknowledges nothing that must be durable (etcd
// raft sends it before the save when storage writes are asynchronous):
// it goes out at once, so a follower whose fsync is slow still shows its
// leader it is alive. Responses that acknowledge entries or grant votes
// (MsgAppResp, MsgVoteResp, MsgPreVoteResp) and everything else wait for
// the save.
func (g *Group) sendEarly(msgs []*raftpb.Message) []*raftpb.Message {
	leader := g.state == raft.StateLeader
	var early, late []*raftpb.Message
	for _, m := range msgs {
		switch t := m.GetType(); {
		case t == raftpb.MsgHeartbeatResp, leader && (t == raftpb.MsgApp || t == raftpb.MsgHeartbeat):
			early = append(early, m)
		default:
			late = append(late, m)
		}
	}
	if len(early) > 0 {
		g.send(early)
	}
	return late
}

// send hands each destination's messages, in order, to the transport.
func (g *Group) send(msgs []*raftpb.Message) {
	for i, m := range msgs {
		if m == nil {
			continue
		}
		to := m.GetTo()
		var batch []*raftpb.Message
		for j := i; j < len(msgs); j++ {
			if msgs[j] != nil && msgs[j].GetTo() == to {
				if msgs[j].GetType() == raftpb.MsgSnap {
					g.snapsSent = append(g.snapsSent, to)
					g.h.stats.snapsSent.Add(1)
				}
				batch = append(batch, msgs[j])
				msgs[j] = nil
			}
		}
		g.h.stats.msgsSent.Add(uint64(len(batch)))
		g.h.cfg.Transport.SendRaft(to, g.id, batch)
	}
}

// onSoftState notes a role or leader change: counters, the log line, the
// state machine's LeaderChanged, the leader waiters.
func (g *Group) onSoftState(ss raft.SoftState) {
	if ss.RaftState != g.state {
		switch ss.RaftState {
		case raft.StateCandidate:
			g.h.stats.elections.Add(1)
		case raft.StatePreCandidate:
			g.h.stats.preVotes.Add(1)
		case raft.StateLeader:
			g.h.stats.becameLeader.Add(1)
		}
		g.state = ss.RaftState
	}
	if ss.Lead != g.lead {
		g.lead = ss.Lead
		g.leaderNew = true
		term := g.rn.BasicStatus().HardState.GetTerm()
		g.term.Store(term)
		g.leader.Store(ss.Lead)
		g.h.stats.leaderChanges.Add(1)
		g.log.Info("raft leader changed", "leader", ss.Lead, "term", term, "local", ss.Lead == g.h.cfg.ID,
			"leader_name", g.h.nodeName(ss.Lead), "group_name", g.h.groupName(g.id))
		g.sm.LeaderChanged(ss.Lead, ss.Lead == g.h.cfg.ID)
		g.mu.Lock()
		close(g.leaderCh)
		g.leaderCh = make(chan struct{})
		g.mu.Unlock()
	}
	g.publishView()
}

// restore replaces the state machine's state with a leader's snapshot,
// already persisted.
func (g *Group) restore(snap *raftpb.Snapshot) bool {
	data, ok, err := unwrapSnapshot(snap.GetData())
	if err == nil && ok {
		err = g.sm.Restore(data)
	}
	if err != nil {
		g.fail("snapshot could not be restored", err)
		return false
	}
	g.applied = snap.GetMetadata().GetIndex()
	g.snapIndex = g.applied
	g.snapBytes = 0
	g.confState = snap.GetMetadata().GetConfState()
	g.h.stats.snapsRestored.Add(1)
	g.log.Info("raft snapshot restored", "index", g.applied, "term", snap.GetMetadata().GetTerm())
	return true
}

// fail stops a group whose storage or state machine failed: continuing
// would acknowledge what is not durable or diverge.
func (g *Group) fail(what string, err error) {
	g.failed = true
	g.log.Error("raft group stopped: "+what, "err", err)
}

// shutdown fails every waiting proposal once the goroutine stops.
func (g *Group) shutdown() {
	g.snapWG.Wait() // the storage stays usable for a restart once Close returns
	g.mu.Lock()
	g.closed = true
	props := g.props
	g.props = nil
	g.mu.Unlock()
	for _, p := range props {
		p.done(nil, ErrClosed)
	}
	for seq, p := range g.pending {
		delete(g.pending, seq)
		p.done(nil, ErrClosed)
	}
	g.h.remove(g)
}

// Close stops the group and waits for its goroutine; its storage stays
// for a restart. Not from a completion (done) callback: those run on the
// goroutine Close waits for.
func (g *Group) Close() {
	g.closeOnce.Do(func() { close(g.stop) })
	<-g.done
}

// Delete stops the group and removes its storage for good.
func (g *Group) Delete() error {
	g.Close()
	return g.storage.Remove()
}

// Done is closed when the group has stopped (Close, Delete, Host.Close, or
// a storage or state machine failure).
func (g *Group) Done() <-chan struct{} { return g.done }
