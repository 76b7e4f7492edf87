package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// SendRaft implements Transport. It marshals msgs on the caller's
// goroutine (so the caller may reuse them at once), appends one frame to
// the peer's queue and returns; it never waits on the network.
func (t *TCP) SendRaft(to NodeID, group Group, msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	p := t.peer(to)
	if p == nil {
		t.dropRaft(nil, to, group, len(msgs))
		return
	}
	c := p.conn.Load()
	if c == nil {
		t.dropRaft(p, to, group, len(msgs))
		return
	}
	sizes, size := raftBatchSizes(msgs)
	buf := getFrameBuf(size)
	defer putFrameBuf(buf)
	frame, err := appendRaftBatchSized((*buf)[:0], group, msgs, sizes)
	*buf = frame[:0]
	if err != nil {
		t.log.Error("cluster raft batch dropped", "peer", to, "group", group, "err", err)
		t.dropRaft(p, to, group, len(msgs))
		return
	}
	limit := t.cfg.MaxFrame
	if hasSnapshot(msgs) {
		// Marked so the receiver takes it up to its MaxSnapshotFrame.
		frame[1] = raftSnapshot
		limit = max(limit, t.cfg.MaxSnapshotFrame)
	}
	if n := len(frame) - headerLen; n > limit {
		if t.limit.allow(fmt.Sprintf("big raft %d", group)) {
			t.log.Error("cluster raft batch dropped: larger than the frame limit", "peer", to, "group", group, "bytes", n, "max_frame", limit)
		}
		t.dropRaft(p, to, group, len(msgs))
		return
	}
	// A frame over a chunk (appends carrying megabytes of entries) goes to
	// the queue as it is (release gives it back to the pool once written).
	owned := len(frame) > chunkSize
	if !c.enqueueFrame(frame, true, owned) {
		t.dropRaft(p, to, group, len(msgs))
		return
	}
	if owned {
		*buf = nil
	}
	p.msgsSent.Add(uint64(len(msgs)))
}

// hasSnapshot reports whether msgs hold a MsgSnap.
func hasSnapshot(msgs []*raftpb.Message) bool {
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			return true
		}
	}
	return false
}

// dropRaft counts dropped messages and tells the owner of the group.
func (t *TCP) dropRaft(p *peer, to NodeID, group Group, n int) {
	if p != nil {
		p.dropped.Add(uint64(n))
	}
	if t.cfg.Unreachable != nil {
		t.cfg.Unreachable(to, group)
	}
}

// Request implements Transport. Without a live connection it waits for
// one up to ConnectWait (within ctx), so a request sent while a
// connection is being re-established does not fail; after that it
// returns ErrUnreachable. A connection lost while the request waits ends
// it with ErrUnreachable at once. The remote handler's ctx carries ctx's
// deadline. Only an ErrUnreachable from before sending (not a peer, not
// connected, queue full) says the request never left; after a lost
// connection or ctx's end the peer may or may not have handled it, so a
// request that is not idempotent needs its own id to be retried.
func (t *TCP) Request(ctx context.Context, to NodeID, kind uint8, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := t.peer(to)
	if p == nil {
		return nil, fmt.Errorf("transport: node %d is not a peer: %w", to, ErrUnreachable)
	}
	c := p.waitConn(ctx, t.cfg.ConnectWait)
	if c == nil {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("transport: node %d not connected: %w (%w)", to, ErrUnreachable, err)
		}
		return nil, fmt.Errorf("transport: node %d not connected: %w", to, ErrUnreachable)
	}
	var timeoutMs uint64
	if dl, ok := ctx.Deadline(); ok {
		timeoutMs = uint64(max(1, time.Until(dl).Milliseconds()))
	}
	if len(body)+binary.MaxVarintLen64 > t.cfg.MaxFrame {
		return nil, fmt.Errorf("transport: request of %d bytes exceeds the frame limit of %d", len(body), t.cfg.MaxFrame)
	}
	id := t.reqID.Add(1)
	ch := make(chan reqResult, 1)
	if !c.addPending(id, ch) {
		return nil, fmt.Errorf("transport: connection to node %d lost: %w", to, ErrUnreachable)
	}
	buf := getFrameBuf(headerLen + 2*binary.MaxVarintLen64 + len(body))
	var pre [binary.MaxVarintLen64]byte
	frame, err := appendFrame((*buf)[:0], frameRequest, kind, id, binary.AppendUvarint(pre[:0], timeoutMs), body)
	ok := err == nil && c.enqueue(frame, true)
	*buf = frame[:0]
	putFrameBuf(buf)
	if !ok {
		c.takePending(id)
		p.dropped.Add(1)
		return nil, fmt.Errorf("transport: send queue to node %d full: %w", to, ErrUnreachable)
	}
	p.msgsSent.Add(1)
	select {
	case r := <-ch:
		return r.body, r.err
	case <-ctx.Done():
		c.takePending(id)
		return nil, ctx.Err()
	}
}

// Notify implements Transport: queued behind what is already queued for
// the peer, or dropped with ErrUnreachable when there is no connection or
// the queue is full.
func (t *TCP) Notify(to NodeID, kind uint8, body []byte) error {
	p := t.peer(to)
	if p == nil {
		return fmt.Errorf("transport: node %d is not a peer: %w", to, ErrUnreachable)
	}
	c := p.conn.Load()
	if c == nil {
		p.dropped.Add(1)
		return fmt.Errorf("transport: node %d not connected: %w", to, ErrUnreachable)
	}
	if len(body) > t.cfg.MaxFrame {
		return fmt.Errorf("transport: notify of %d bytes exceeds the frame limit of %d", len(body), t.cfg.MaxFrame)
	}
	buf := getFrameBuf(headerLen + len(body))
	frame, err := appendFrame((*buf)[:0], frameNotify, kind, 0, nil, body)
	ok := err == nil && c.enqueue(frame, true)
	*buf = frame[:0]
	putFrameBuf(buf)
	if !ok {
		p.dropped.Add(1)
		return fmt.Errorf("transport: send queue to node %d full: %w", to, ErrUnreachable)
	}
	p.msgsSent.Add(1)
	return nil
}
