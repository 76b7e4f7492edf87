package raftnode

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ProposeAsync proposes data and calls done once with the state machine's
// Apply result when this node applies the entry, or with an error:
// ErrProposalTimeout when it was not applied within ProposalTimeout (lost
// in a leader change or a partition — or slow: it may still commit),
// ErrBusy when the group's proposal inbox already holds
// MaxQueuedProposalBytes (the proposal was not made), ErrClosed when the
// group stops first. A follower forwards the proposal to the leader. done
// runs on the group's goroutine and must not block (ErrClosed and ErrBusy
// come on a goroutine of their own). data is kept, not copied (the
// proposal's header is written with it into the entry): the caller must
// not change it afterwards. A nil done proposes without waiting for the
// outcome.
func (g *Group) ProposeAsync(data []byte, done func(any, error)) {
	g.proposeAsync(data, done, false)
}

// ProposeAsyncFailFast is ProposeAsync, except that the proposal fails
// with ErrLeaderChanged as soon as this node knows a leader other than the
// one Raft handed it to — another node, or the same node in another term —
// instead of at the proposal timeout: a publisher's confirms go out in
// publish order, and one proposal lost with a dead leader would hold back
// every later confirm for the whole timeout. Like a timeout, it may still
// commit (the old leader may have replicated it).
//
// Only proposals that reached a leader fail so. One made while no leader
// is known, or dropped by Raft during a leadership transfer, waits in the
// group and is proposed to the new leader when one is known: failing it
// would nack a proposal that then commits (a publisher that resends on
// nack gets two copies). A leader merely unknown for a moment (a
// follower's failed pre-vote) and then known again, the same node in the
// same term, fails nothing: what was handed to it is still there.
func (g *Group) ProposeAsyncFailFast(data []byte, done func(any, error)) {
	g.proposeAsync(data, done, true)
}

func (g *Group) proposeAsync(data []byte, done func(any, error), failFast bool) {
	if done == nil {
		done = func(any, error) {}
	}
	seq := g.seq.Add(1)
	p := proposal{seq: seq, data: data, done: done, start: time.Now(), failFast: failFast}
	g.enqueue(p)
}

// enqueue queues p for the goroutine. The queue is bounded by bytes
// (configuration changes aside): the goroutine empties it at every turn,
// so it only fills while the goroutine is held up — above all waiting
// for a WAL fsync that hangs, when Raft's own MaxUncommittedBytes, which
// it checks only as it steps a proposal in, cannot push back. A full
// queue refuses with ErrBusy, which the broker turns into a nack, as a
// node out of memory or disk refuses a publish, instead of growing
// without bound. An empty queue takes any one proposal.
func (g *Group) enqueue(p proposal) {
	g.h.stats.proposals.Add(1)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		go p.done(nil, ErrClosed)
		return
	}
	if p.cc == nil && len(g.props) > 0 && g.propBytes+len(p.data) > g.h.cfg.MaxQueuedProposalBytes {
		g.mu.Unlock()
		g.h.stats.proposalsBusy.Add(1)
		go p.done(nil, ErrBusy)
		return
	}
	p.queued = g.h.live.now.Load()
	g.props = append(g.props, p)
	g.propBytes += len(p.data)
	g.mu.Unlock()
	g.signal()
}

// Propose proposes data and waits until this node has applied it,
// returning Apply's result. When ctx ends first it returns ctx's error and
// the proposal's fate is unknown (it may still commit).
func (g *Group) Propose(ctx context.Context, data []byte) (any, error) {
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	g.ProposeAsync(data, func(v any, err error) { ch <- result{v, err} })
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// proposeAll hands the turn's queued proposals to Raft and tracks each
// until it applies or times out; consecutive normal proposals go as batch
// entries (batch.go).
func (g *Group) proposeAll(props []proposal) {
	ps := make([]*pending, len(props))
	for i := range props {
		pd := &pending{proposal: props[i], deadline: g.tick + g.h.cfg.proposalTicks()}
		g.pending[pd.seq] = pd
		g.expiry = append(g.expiry, expiring{pd.seq, pd.deadline})
		ps[i] = pd
	}
	g.proposeRun(ps)
}

// proposeRun steps ps into Raft in order: a configuration change alone,
// runs of normal proposals as batch entries. What Raft drops (no leader
// known, a leadership transfer under way, too much uncommitted) is kept
// and proposed again when a leader is known, until it times out. A
// dropped proposal was appended nowhere, so proposing it again cannot
// apply it twice.
//
// A node's proposals reach Raft in the order they were made: while earlier
// ones wait in g.retry, a new one waits behind them instead of overtaking
// them. Otherwise a publisher's messages commit out of order when a leader
// becomes known between a drop and its retry (a Step in the same turn, or
// the uncommitted-bytes limit dropping some and not the next).
func (g *Group) proposeRun(ps []*pending) {
	var lead NodeID // the leader and term the accepted entries go to
	var term uint64
	for i := 0; i < len(ps); {
		if len(g.retry) > 0 {
			for _, p := range ps[i:] {
				g.retry = append(g.retry, p.seq)
			}
			return
		}
		j, size := i+1, len(ps[i].data)+maxHeaderLen
		if ps[i].cc == nil {
			for j < len(ps) && j-i < maxBatchItems && ps[j].cc == nil && size+len(ps[j].data)+maxHeaderLen <= maxBatchBytes {
				size += len(ps[j].data) + maxHeaderLen
				j++
			}
		}
		if g.proposeEntry(ps[i:j]) {
			if lead == 0 {
				// Raft's own view: a message stepped this turn may have
				// made another leader known before the Ready says so.
				bs := g.rn.BasicStatus()
				lead, term = bs.Lead, bs.HardState.GetTerm()
			}
			for _, p := range ps[i:j] {
				p.handedLead, p.handedTerm = lead, term
			}
		}
		i = j
	}
}

// proposeEntry proposes one entry: a configuration change, one proposal's
// data, or a batch of several. True when Raft took it (appended it as the
// leader, or forwarded it to the leader).
func (g *Group) proposeEntry(run []*pending) bool {
	var err error
	switch {
	case run[0].cc != nil:
		err = g.rn.ProposeConfChange(run[0].cc)
	case len(run) == 1:
		buf, pooled := entryBuf(maxHeaderLen + len(run[0].data))
		buf = appendHeader(buf, g.h.cfg.ID, run[0].seq, run[0].data)
		err = g.rn.Propose(buf)
		g.keepEntryBuf(buf, pooled, err)
	default:
		buf, pooled := entryBuf(proposalsSize(run))
		buf = appendProposals(buf, g.h.cfg.ID, run)
		err = g.rn.Propose(buf)
		g.keepEntryBuf(buf, pooled, err)
		g.h.stats.batched.Add(uint64(len(run)))
	}
	if errors.Is(err, raft.ErrProposalDropped) {
		for _, p := range run {
			g.retry = append(g.retry, p.seq)
		}
		return false
	}
	if err != nil {
		for _, p := range run {
			delete(g.pending, p.seq)
			p.done(nil, err)
		}
		return false
	}
	return true
}

// keepEntryBuf holds a pooled entry buffer Raft took (err nil) until the
// Ready that may forward it is sent, and gives back at once one it
// refused (propbuf.go).
func (g *Group) keepEntryBuf(buf []byte, pooled bool, err error) {
	switch {
	case !pooled:
	case err == nil:
		g.holdEntryBuf(buf)
	default:
		putEntryBuf(buf)
	}
}

// noteTransfer records, on the leader, the transfer of leadership to to
// that it is about to start (transferred).
func (g *Group) noteTransfer(to NodeID) {
	if bs := g.rn.BasicStatus(); bs.RaftState == raft.StateLeader {
		g.transferTo, g.transferTerm = to, bs.HardState.GetTerm()
	}
}

// transferred: p was appended by this node as the leader in the term in
// which it handed leadership to lead, which now leads in the next term.
// Raft sends the transferee its MsgTimeoutNow only once it holds the
// leader's whole log, and the leader appends nothing more meanwhile
// (proposals are dropped and wait in g.retry): so the new leader has p,
// and a leader never drops its own entries — p commits unless that leader
// dies first (then p fails at the next leader change or times out). This
// is every proposal in the pipeline at a rebalance's transfer, which
// failing would nack although they commit.
func (g *Group) transferred(p *pending, lead NodeID, term uint64) bool {
	return p.handedLead == g.h.cfg.ID && p.handedTerm == g.transferTerm && lead == g.transferTo && term == g.transferTerm+1
}

// failHanded notes the leader and term known after a Ready and, when they
// are not the last ones known, fails with ErrLeaderChanged the waiting
// ProposeAsyncFailFast proposals that were handed to another leader or
// term (ProposeAsyncFailFast). Those never handed to a leader (in g.retry)
// stay: they go to the new one. A change to no leader fails nothing.
func (g *Group) failHanded(lead NodeID, term uint64) {
	if lead == 0 || (lead == g.knownLead && term == g.knownTerm) {
		return
	}
	g.knownLead, g.knownTerm = lead, term
	for _, e := range g.expiry { // proposal order
		p, ok := g.pending[e.seq]
		if !ok || !p.failFast || p.handedLead == 0 || (p.handedLead == lead && p.handedTerm == term) || g.transferred(p, lead, term) {
			continue
		}
		delete(g.pending, e.seq)
		g.h.stats.proposalsLeaderChanged.Add(1)
		p.done(nil, ErrLeaderChanged)
	}
}

func (g *Group) retryDropped() {
	seqs := g.retry
	g.retry = nil
	ps := make([]*pending, 0, len(seqs))
	for _, seq := range seqs {
		if p, ok := g.pending[seq]; ok {
			ps = append(ps, p)
		}
	}
	g.proposeRun(ps)
}

// complete finishes this node's proposal seq, if it is still waiting.
func (g *Group) complete(seq uint64, v any) {
	p, ok := g.pending[seq]
	if !ok {
		return
	}
	delete(g.pending, seq)
	g.h.stats.observeCommit(time.Since(p.start))
	p.done(v, nil)
}

// onTick times out proposals and refreshes the published status.
func (g *Group) onTick() {
	n := 0
	for n < len(g.expiry) && g.expiry[n].deadline <= g.tick {
		seq := g.expiry[n].seq
		n++
		if p, ok := g.pending[seq]; ok {
			delete(g.pending, seq)
			g.h.stats.proposalTimeouts.Add(1)
			p.done(nil, ErrProposalTimeout)
		}
	}
	if n > 0 {
		g.expiry = g.expiry[n:]
	}
	if len(g.retry) > 0 && g.lead != 0 {
		g.retryDropped()
	}
	g.publishView()
}

// apply applies committed entries: normal entries to the state machine
// (without their header), configuration changes to Raft.
func (g *Group) apply(ents []*raftpb.Entry) {
	me := g.h.cfg.ID
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= g.applied {
			continue
		}
		g.snapBytes += uint64(len(e.GetData()))
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				break // a new leader's empty entry
			}
			if e.GetData()[0] == batchVersion {
				if err := splitBatch(e.GetData(), func(item []byte) { g.applyOne(idx, item, me) }); err != nil {
					g.log.Error("raft entry skipped", "index", idx, "err", err)
				}
				break
			}
			g.applyOne(idx, e.GetData(), me)
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			g.applyConfChange(e)
		}
		g.applied = idx
	}
}

// applyOne applies one proposal's data (header and payload) at index idx
// and completes its proposer, when that is this node (me).
func (g *Group) applyOne(idx uint64, data []byte, me NodeID) {
	node, seq, payload, err := decodeHeader(data)
	if err != nil {
		// Every replica skips it alike: no divergence, but say so.
		g.log.Error("raft entry skipped", "index", idx, "err", err)
		return
	}
	v := g.sm.Apply(idx, payload)
	g.h.stats.applied.Add(1)
	if node == me {
		g.complete(seq, v)
	}
}

func (g *Group) applyConfChange(e *raftpb.Entry) {
	var cc raftpb.ConfChangeI
	var err error
	if e.GetType() == raftpb.EntryConfChange {
		var c raftpb.ConfChange
		err = proto.Unmarshal(e.GetData(), &c)
		cc = &c
	} else {
		var c raftpb.ConfChangeV2
		err = proto.Unmarshal(e.GetData(), &c)
		cc = &c
	}
	if err != nil {
		g.log.Error("raft configuration change skipped: undecodable", "index", e.GetIndex(), "err", err)
		return
	}
	g.confState = g.rn.ApplyConfChange(cc)
	g.snapDue = true
	g.h.stats.confChanges.Add(1)
	g.log.Info("raft configuration changed", "index", e.GetIndex(),
		"voters", g.confState.GetVoters(), "learners", g.confState.GetLearners())
	// Publish first: the waiting caller reads Status when it returns.
	g.publishView()
	if node, seq, _, err := decodeHeader(cc.AsV2().GetContext()); err == nil && node == g.h.cfg.ID {
		g.complete(seq, nil)
	}
}
