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

// kindClientTakeover is the request "close your connections of these
// client ids" (body: encodeTakeovers; reply: one takeoverDone or
// takeoverClosing byte per client id, in order).
const kindClientTakeover uint8 = 18

// Replies to kindClientTakeover, one byte per client id.
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

// ClientTakeover tells this node's connection of a client id in a vhost,
// if any, to close, and returns a channel closed once it has ended, or
// nil when there is nothing to wait for. cleanStart is the new
// connection's Clean Start (it decides what becomes of a delayed will).
// It must not block. Set by the MQTT server.
type ClientTakeover func(vhost, clientID string, cleanStart bool) (ended <-chan struct{})

// SetClientTakeover sets the handler of other nodes' takeover requests.
func (n *Node) SetClientTakeover(fn ClientTakeover) {
	n.takeover.Store(&fn)
}

// takeoverItem is one client id to take over, and where its answer goes.
type takeoverItem struct {
	vhost, clientID string
	cleanStart      bool
	answer          chan takeoverAnswer // buffered: the sender never blocks on it
}

type takeoverAnswer struct {
	closing bool
	err     error
}

// takeoverLink batches the takeovers for one peer: a request carries
// every client id queued since the last was sent, so a connect storm costs
// a request per peer per round trip, not one per CONNECT. Normally one
// request is in flight; but the peer answers a request only once every
// connection in it has ended, so one old connection slow to close (its
// client not reading) would hold every CONNECT queued behind it, on any
// client id, until their own wait ran out and they connected without that
// peer's answer while their old connections there still lived. So once
// the latest request has been out takeoverStall without an answer, what
// is queued goes in another request, up to takeoverInFlight at once.
type takeoverLink struct {
	n        *Node
	peer     transport.NodeID
	mu       sync.Mutex
	items    []takeoverItem
	sending  int       // requests in flight (senders running)
	lastSend time.Time // when the latest request went out
	recheck  bool      // a timer will look again at what is queued
}

// takeoverInFlight bounds the takeover requests in flight to one peer;
// takeoverStall is how long the latest may go unanswered before queued
// takeovers go in another (a round trip takes well under a millisecond).
const (
	takeoverInFlight = 8
	takeoverStall    = 20 * time.Millisecond
)

// takeoverLinkTo returns the peer's link, made on first use.
func (n *Node) takeoverLinkTo(p transport.NodeID) *takeoverLink {
	n.tomu.Lock()
	defer n.tomu.Unlock()
	l := n.tolinks[p]
	if l == nil {
		if n.tolinks == nil {
			n.tolinks = map[transport.NodeID]*takeoverLink{}
		}
		l = &takeoverLink{n: n, peer: p}
		n.tolinks[p] = l
	}
	return l
}

func (l *takeoverLink) add(it takeoverItem) {
	l.mu.Lock()
	l.items = append(l.items, it)
	start := l.startLocked()
	l.mu.Unlock()
	if start {
		go l.send()
	}
}

// startLocked reports whether to start a sender for what is queued (and
// counts it): when none runs, or when those in flight are stalled and
// fewer than takeoverInFlight. Otherwise, if another may start later, a
// timer looks again when the latest request has been out takeoverStall.
func (l *takeoverLink) startLocked() bool {
	if len(l.items) == 0 {
		return false
	}
	waited := time.Since(l.lastSend)
	if l.sending == 0 || (l.sending < takeoverInFlight && waited >= takeoverStall) {
		l.sending++
		return true
	}
	if l.sending < takeoverInFlight && !l.recheck {
		l.recheck = true
		time.AfterFunc(takeoverStall-waited, func() {
			l.mu.Lock()
			l.recheck = false
			start := l.startLocked()
			l.mu.Unlock()
			if start {
				l.send()
			}
		})
	}
	return false
}

// send sends what is queued, one request at a time, until nothing is.
func (l *takeoverLink) send() {
	for {
		l.mu.Lock()
		items := l.items
		l.items = nil
		if len(items) == 0 {
			l.sending--
			l.mu.Unlock()
			return
		}
		l.lastSend = time.Now()
		l.mu.Unlock()
		body := binary.AppendUvarint(nil, uint64(len(items)))
		for _, it := range items {
			body = encodeTakeover(body, it.vhost, it.clientID, it.cleanStart)
		}
		ctx, cancel := context.WithTimeout(context.Background(), TakeoverWait)
		out, err := l.n.tr.Request(ctx, l.peer, kindClientTakeover, body)
		cancel()
		if err == nil && len(out) != len(items) {
			err = fmt.Errorf("cluster: %d takeover answers for %d client ids", len(out), len(items))
		}
		for i, it := range items {
			a := takeoverAnswer{err: err}
			if err == nil {
				a.closing = out[i] == takeoverClosing
			}
			it.answer <- a
		}
	}
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
	answer := make(chan takeoverAnswer, len(peers))
	for _, p := range peers {
		n.takeoverLinkTo(p).add(takeoverItem{vhost: vhost, clientID: clientID, cleanStart: cleanStart, answer: answer})
	}
	t := time.NewTimer(TakeoverWait)
	defer t.Stop()
	var pending, failed int
	var firstErr error
	for got := 0; got < len(peers); got++ {
		select {
		case a := <-answer:
			switch {
			case a.err != nil:
				failed++
				if firstErr == nil {
					firstErr = a.err
				}
			case a.closing:
				pending++
			}
		case <-t.C:
			failed += len(peers) - got
			firstErr = errors.Join(firstErr, fmt.Errorf("no answer within %v", TakeoverWait))
			got = len(peers)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if failed > 0 {
		n.log.Warn("MQTT client-id takeover: a node did not answer; connecting without it", "client_id", clientID,
			"nodes", failed, "err", firstErr)
	}
	if pending > 0 {
		return ErrTakeoverPending
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

// takeoverMargin is kept of the asking node's deadline for the answer to
// travel back.
const takeoverMargin = 250 * time.Millisecond

// handleTakeover answers kindClientTakeover: it tells each connection to
// close, then waits for those that must end (until the asker's deadline,
// less a margin for the way back).
func (n *Node) handleTakeover(ctx context.Context, body []byte) ([]byte, error) {
	items, err := decodeTakeovers(body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(items))
	fn := n.takeover.Load()
	if fn == nil {
		return out, nil // no MQTT server here: no connection of anyone
	}
	waits := make([]<-chan struct{}, len(items))
	for i, it := range items {
		waits[i] = (*fn)(it.vhost, it.clientID, it.cleanStart)
	}
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)-takeoverMargin)
	}
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	expired := false
	for i, w := range waits {
		if w == nil {
			continue
		}
		if !expired {
			select {
			case <-w:
				continue
			case <-t.C:
				expired = true
			}
		}
		select {
		case <-w:
		default:
			out[i] = takeoverClosing
		}
	}
	return out, nil
}

// encodeTakeover appends one client id of a takeover request: flags
// (bit 0: clean start), then vhost and client id, each a uvarint length
// and its bytes. A request is a uvarint count and that many of these.
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

// maxTakeoverBatch bounds the count a request may announce, so a bad one
// cannot make the decoder allocate much before it runs out of bytes.
const maxTakeoverBatch = 1 << 16

// decodeTakeovers decodes a takeover request, nothing after it.
func decodeTakeovers(b []byte) ([]takeoverItem, error) {
	bad := errors.New("cluster: malformed client-takeover request")
	count, k := binary.Uvarint(b)
	if k <= 0 || count > maxTakeoverBatch || count > uint64(len(b)) {
		return nil, bad
	}
	b = b[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return s, true
	}
	items := make([]takeoverItem, 0, count)
	for range count {
		if len(b) < 1 || b[0] > 1 {
			return nil, bad
		}
		it := takeoverItem{cleanStart: b[0] == 1}
		b = b[1:]
		var ok1, ok2 bool
		it.vhost, ok1 = str()
		it.clientID, ok2 = str()
		if !ok1 || !ok2 {
			return nil, bad
		}
		items = append(items, it)
	}
	if len(b) != 0 {
		return nil, bad
	}
	return items, nil
}
