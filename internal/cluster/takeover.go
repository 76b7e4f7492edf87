package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tern-broker/tern/internal/cluster/transport"
)

// Client-id takeover across nodes (MQTT 3.1.1 MQTT-3.1.4-2, 5.0 §3.1.4):
// a CONNECT with a client id that is connected elsewhere must disconnect
// the older connection, whichever node it is on. The MQTT server does it
// on its own node (internal/mqtt, Server.claim); for the others, before
// its CONNACK, it asks every connected peer to close its connection of
// that client id (kindClientTakeover) and waits for their answers, so the
// old connection no longer takes the session's messages when the new one
// starts. A peer answers once its connection has ended (teardown done:
// its in-flight deliveries back in the session queue), or at once when it
// has none.
//
// Why a broadcast rather than an owner recorded in the replicated
// metadata: every CONNECT needs the check (clean sessions too), and a
// metadata commit per CONNECT (a Raft round and an fsync on a quorum) is
// far more than one request per peer over the connections that exist
// anyway; nor would a record by itself close the old connection. A
// single node never reaches this code.

// kindClientTakeover is the request "close your connection of this client
// id" (body: encodeTakeover; reply: takeoverDone or takeoverClosing).
const kindClientTakeover uint8 = 18

// Replies to kindClientTakeover.
const (
	takeoverDone    byte = 0 // no such connection, or it has ended
	takeoverClosing byte = 1 // it was told to close and has not finished yet
)

// TakeoverWait bounds how long a CONNECT waits for the other nodes'
// answers. A peer that has not answered by then (cut off but not yet
// noticed, overloaded) is not waited for: the CONNECT goes on. A client
// there cannot keep the session for long: its connection's node is cut
// off from the session's queue (forwarded consumers end after the lease).
var TakeoverWait = 3 * time.Second

// ErrTakeoverPending is TakeOver's error when a peer's old connection of
// the client id has not finished closing in time: the CONNECT must be
// refused (the client tries again), or two connections would share the
// session.
var ErrTakeoverPending = errors.New("cluster: the client's connection on another node is still closing")

// ClientTakeover closes this node's connection of a client id in a vhost,
// if any, and reports whether it has finished closing by the deadline of
// ctx. cleanStart is the new connection's Clean Start (it decides what
// becomes of a delayed will). Set by the MQTT server.
type ClientTakeover func(ctx context.Context, vhost, clientID string, cleanStart bool) (closed bool)

// SetClientTakeover sets the handler of other nodes' takeover requests.
func (n *Node) SetClientTakeover(fn ClientTakeover) {
	n.takeover.Store(&fn)
}

// TakeOver asks every connected peer to close its connection of clientID
// in vhost and waits for the answers, at most TakeoverWait. It fails with
// ErrTakeoverPending when a peer's connection did not finish closing in
// time; peers that are down, not connected, or silent are not waited for
// beyond the bound (logged).
func (n *Node) TakeOver(ctx context.Context, vhost, clientID string, cleanStart bool) error {
	var buf [8]transport.NodeID
	peers := n.tr.ConnectedPeers(buf[:0])
	if len(peers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, TakeoverWait)
	defer cancel()
	body := encodeTakeover(nil, vhost, clientID, cleanStart)
	var (
		mu      sync.Mutex
		pending []transport.NodeID
		silent  []string
	)
	ask := func(p transport.NodeID) {
		out, err := n.tr.Request(ctx, p, kindClientTakeover, body)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			silent = append(silent, fmt.Sprintf("%s: %v", n.memberName(p), err))
		case len(out) == 1 && out[0] == takeoverClosing:
			pending = append(pending, p)
		}
	}
	if len(peers) == 1 {
		ask(peers[0]) // the usual three-node cluster asks two: no goroutine for one
	} else {
		var wg sync.WaitGroup
		for _, p := range peers[1:] {
			wg.Go(func() { ask(p) })
		}
		ask(peers[0])
		wg.Wait()
	}
	if len(silent) > 0 {
		n.log.Warn("MQTT client-id takeover: a node did not answer; connecting without it", "client_id", clientID, "nodes", silent)
	}
	if len(pending) > 0 {
		return fmt.Errorf("%w (node %s)", ErrTakeoverPending, n.memberName(pending[0]))
	}
	return nil
}

// NodeReachable reports whether this node has a connection to the node
// with replica id id now (true for this node itself).
func (n *Node) NodeReachable(id uint64) bool {
	return id == n.cfg.Self.ID || n.tr.Connected(id)
}

// NodeName is the member name of replica id id (its hex id if unknown).
func (n *Node) NodeName(id uint64) string { return n.memberName(id) }

// handleTakeover answers kindClientTakeover.
func (n *Node) handleTakeover(ctx context.Context, body []byte) ([]byte, error) {
	vhost, clientID, cleanStart, err := decodeTakeover(body)
	if err != nil {
		return nil, err
	}
	fn := n.takeover.Load()
	if fn == nil || (*fn)(ctx, vhost, clientID, cleanStart) {
		return []byte{takeoverDone}, nil
	}
	return []byte{takeoverClosing}, nil
}

// encodeTakeover appends a takeover request: flags (bit 0: clean start),
// then vhost and client id, each a uvarint length and its bytes.
func encodeTakeover(b []byte, vhost, clientID string, cleanStart bool) []byte {
	var flags byte
	if cleanStart {
		flags = 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(vhost)))
	b = append(b, vhost...)
	b = binary.AppendUvarint(b, uint64(len(clientID)))
	return append(b, clientID...)
}

// decodeTakeover decodes encodeTakeover's bytes, nothing after them.
func decodeTakeover(b []byte) (vhost, clientID string, cleanStart bool, err error) {
	bad := errors.New("cluster: malformed client-takeover request")
	if len(b) < 1 || b[0] > 1 {
		return "", "", false, bad
	}
	cleanStart, b = b[0] == 1, b[1:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return s, true
	}
	var ok1, ok2 bool
	vhost, ok1 = str()
	clientID, ok2 = str()
	if !ok1 || !ok2 || len(b) != 0 {
		return "", "", false, bad
	}
	return vhost, clientID, cleanStart, nil
}
