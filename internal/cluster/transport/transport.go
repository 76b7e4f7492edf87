package transport

import (
	"context"
	"errors"

	"go.etcd.io/raft/v3/raftpb"
)

// NodeID names a node: its Raft replica id in every group it belongs to.
type NodeID = uint64

// Group names a Raft group: 0 is the metadata group, every quorum queue
// has its own.
type Group = uint64

// Handler receives what peers send. The transport calls it from its own
// goroutines; it must not block for long (hand work to a queue).
type Handler interface {
	// HandleRaft receives Raft messages for one group, in the order the
	// peer sent them (the transport never reorders a connection; a faulty
	// test network may).
	HandleRaft(from NodeID, group Group, msgs []*raftpb.Message)
	// HandleRequest answers a forwarding request (kind names the
	// operation; body is its encoding). The reply goes back to the
	// caller's Request.
	HandleRequest(ctx context.Context, from NodeID, kind uint8, body []byte) ([]byte, error)
	// HandleNotify receives a one-way message (a delivery pushed to a
	// forwarded consumer, a credit update).
	HandleNotify(from NodeID, kind uint8, body []byte)
}

// Transport sends to peers. Every method is safe for concurrent use.
type Transport interface {
	// SendRaft queues msgs for the peer and returns at once; when the
	// peer is unreachable or its queue is full the messages are dropped
	// (Raft retries) and the group is told through ReportUnreachable on
	// its side. It keeps neither msgs nor their bytes once it returns
	// (it encodes them first): raftnode reuses the buffers of the
	// entries a follower forwards.
	SendRaft(to NodeID, group Group, msgs []*raftpb.Message)
	// Request sends a request and waits for its reply or ctx.
	Request(ctx context.Context, to NodeID, kind uint8, body []byte) ([]byte, error)
	// Notify sends a one-way message; it may be dropped if the peer is
	// unreachable (the caller's protocol must tolerate that).
	Notify(to NodeID, kind uint8, body []byte) error
	// SetPeer adds or changes a peer's address; RemovePeer forgets one
	// (membership changes at run time).
	SetPeer(id NodeID, addr string)
	RemovePeer(id NodeID)
	Close() error
}

// ErrUnreachable is returned by Request and Notify when no connection to
// the peer can be made.
var ErrUnreachable = errors.New("cluster peer unreachable")

// RemoteError is an error returned by a peer's HandleRequest, carried back
// as text.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }
