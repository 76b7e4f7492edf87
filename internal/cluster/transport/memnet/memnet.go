package memnet

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// NodeID names a node.
type NodeID = transport.NodeID

// QueueLen bounds each endpoint's receive queue (deliveries, not messages).
const QueueLen = 4096

// Network is the in-memory network. Every method is safe for concurrent use.
type Network struct {
	clock clock.Clock

	mu        sync.Mutex
	rng       *rand.Rand
	endpoints map[NodeID]*Endpoint
	drop      float64
	dup       float64
	reorderP  float64
	reorderW  time.Duration
	delayMin  time.Duration
	delayMax  time.Duration
	side      map[NodeID]int // partition side; nodes not listed are on side 0
	cut       map[[2]NodeID]bool

	// Counters, for tests that check faults happened.
	Sent, Dropped, Duplicated, Delivered atomic.Uint64
}

// New returns a network without faults; c runs the delays (nil: the
// system clock); seed seeds the fault decisions.
func New(c clock.Clock, seed uint64) *Network {
	return &Network{
		clock:     clock.Or(c),
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		endpoints: map[NodeID]*Endpoint{},
		side:      map[NodeID]int{},
		cut:       map[[2]NodeID]bool{},
	}
}

// Drop makes each message lost with probability p.
func (n *Network) Drop(p float64) { n.mu.Lock(); n.drop = p; n.mu.Unlock() }

// Duplicate makes each message delivered twice with probability p.
func (n *Network) Duplicate(p float64) { n.mu.Lock(); n.dup = p; n.mu.Unlock() }

// Delay delays every message by a uniformly random duration in [lo, hi].
func (n *Network) Delay(lo, hi time.Duration) {
	n.mu.Lock()
	n.delayMin, n.delayMax = lo, max(lo, hi)
	n.mu.Unlock()
}

// Reorder holds each message back, with probability p, by a random
// duration up to window, so later messages overtake it.
func (n *Network) Reorder(p float64, window time.Duration) {
	n.mu.Lock()
	n.reorderP, n.reorderW = p, window
	n.mu.Unlock()
}

// Partition splits the nodes into sides that cannot reach each other;
// nodes not listed form one more side together.
func (n *Network) Partition(sides ...[]NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.side)
	for i, s := range sides {
		for _, id := range s {
			n.side[id] = i + 1
		}
	}
}

// Isolate cuts id off from every other node (both directions).
func (n *Network) Isolate(id NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for other := range n.endpoints {
		if other != id {
			n.cut[[2]NodeID{id, other}] = true
			n.cut[[2]NodeID{other, id}] = true
		}
	}
}

// Cut cuts the one-way link from → to.
func (n *Network) Cut(from, to NodeID) {
	n.mu.Lock()
	n.cut[[2]NodeID{from, to}] = true
	n.mu.Unlock()
}

// Heal removes every partition, isolation and cut link (not the random
// faults: set those to 0 to stop them).
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.side)
	clear(n.cut)
	n.mu.Unlock()
}

// Calm stops every random fault: drops, duplicates, delays, reordering.
func (n *Network) Calm() {
	n.mu.Lock()
	n.drop, n.dup, n.reorderP, n.delayMin, n.delayMax = 0, 0, 0, 0, 0
	n.mu.Unlock()
}

// Endpoint returns node id's transport, replacing (and closing) an
// earlier one: a restarted node gets a fresh endpoint. Messages reach it
// once SetHandler is called.
func (n *Network) Endpoint(id NodeID) *Endpoint {
	e := &Endpoint{net: n, id: id, queue: make(chan delivery, QueueLen), stop: make(chan struct{}), gone: make(chan struct{})}
	n.mu.Lock()
	old := n.endpoints[id]
	n.endpoints[id] = e
	n.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	go e.receive()
	return e
}

// reachable reports whether from can send to to now. Called with n.mu held.
func (n *Network) reachable(from, to NodeID) bool {
	return n.side[from] == n.side[to] && !n.cut[[2]NodeID{from, to}]
}

// fate decides, under the lock, what happens to one message: lost, or
// delivered copies times after delay.
func (n *Network) fate(from, to NodeID) (dst *Endpoint, copies int, delay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst = n.endpoints[to]
	if dst == nil || !n.reachable(from, to) {
		return nil, 0, 0
	}
	if n.drop > 0 && n.rng.Float64() < n.drop {
		return nil, 0, 0
	}
	copies = 1
	if n.dup > 0 && n.rng.Float64() < n.dup {
		copies = 2
	}
	delay = n.delayMin
	if n.delayMax > n.delayMin {
		delay += time.Duration(n.rng.Int64N(int64(n.delayMax - n.delayMin + 1)))
	}
	if n.reorderP > 0 && n.reorderW > 0 && n.rng.Float64() < n.reorderP {
		delay += 1 + time.Duration(n.rng.Int64N(int64(n.reorderW)))
	}
	return dst, copies, delay
}

// faulty reports whether any random fault is on (else a batch travels as one).
func (n *Network) faulty() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.drop > 0 || n.dup > 0 || n.reorderP > 0 || n.delayMax > 0
}

// delivery is one message batch (or request) in flight.
type delivery struct {
	from   NodeID
	group  transport.Group
	raft   [][]byte // encoded Raft messages
	kind   uint8
	body   []byte
	notify bool
}

// Endpoint is one node's transport.Transport on the Network.
type Endpoint struct {
	net   *Network
	id    NodeID
	queue chan delivery
	stop  chan struct{}
	gone  chan struct{} // closed when receive returns

	mu      sync.Mutex
	handler transport.Handler
	closed  bool
}

// SetHandler sets who receives what is sent to this endpoint.
func (e *Endpoint) SetHandler(h transport.Handler) {
	e.mu.Lock()
	e.handler = h
	e.mu.Unlock()
}

func (e *Endpoint) currentHandler() transport.Handler {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	return e.handler
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// receive hands queued deliveries to the handler, one at a time.
func (e *Endpoint) receive() {
	defer close(e.gone)
	for {
		select {
		case <-e.stop:
			return
		case d := <-e.queue:
			h := e.currentHandler()
			if h == nil {
				continue
			}
			if d.notify {
				h.HandleNotify(d.from, d.kind, d.body)
				continue
			}
			msgs := make([]*raftpb.Message, 0, len(d.raft))
			for _, b := range d.raft {
				m := &raftpb.Message{}
				if err := proto.Unmarshal(b, m); err != nil {
					panic("memnet: a message it encoded does not decode: " + err.Error())
				}
				msgs = append(msgs, m)
			}
			e.net.Delivered.Add(uint64(len(msgs)))
			h.HandleRaft(d.from, d.group, msgs)
		}
	}
}

// enqueue puts d on the endpoint's queue, dropping it when full or closed.
func (e *Endpoint) enqueue(d delivery) {
	if e.isClosed() {
		e.net.Dropped.Add(uint64(max(1, len(d.raft))))
		return
	}
	select {
	case e.queue <- d:
	default:
		e.net.Dropped.Add(uint64(max(1, len(d.raft))))
	}
}

// post delivers d to dst after delay (on the network's clock).
func (n *Network) post(dst *Endpoint, d delivery, delay time.Duration) {
	if delay <= 0 {
		dst.enqueue(d)
		return
	}
	n.clock.AfterFunc(delay, func() { dst.enqueue(d) })
}

// SendRaft implements transport.Transport.
func (e *Endpoint) SendRaft(to NodeID, group transport.Group, msgs []*raftpb.Message) {
	if e.isClosed() || len(msgs) == 0 {
		return
	}
	n := e.net
	n.Sent.Add(uint64(len(msgs)))
	enc := make([][]byte, len(msgs))
	for i, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			panic("memnet: raft message does not encode: " + err.Error())
		}
		enc[i] = b
	}
	if !n.faulty() {
		dst, _, _ := n.fate(e.id, to)
		if dst == nil {
			n.Dropped.Add(uint64(len(msgs)))
			return
		}
		dst.enqueue(delivery{from: e.id, group: group, raft: enc})
		return
	}
	// Faults apply to each message on its own.
	for _, b := range enc {
		dst, copies, delay := n.fate(e.id, to)
		if dst == nil {
			n.Dropped.Add(1)
			continue
		}
		if copies > 1 {
			n.Duplicated.Add(1)
		}
		for range copies {
			n.post(dst, delivery{from: e.id, group: group, raft: [][]byte{b}}, delay)
		}
	}
}

// Request implements transport.Transport: the peer's handler answers on a
// goroutine of its own. A peer cut off or lost to a drop is unreachable.
func (e *Endpoint) Request(ctx context.Context, to NodeID, kind uint8, body []byte) ([]byte, error) {
	if e.isClosed() {
		return nil, transport.ErrUnreachable
	}
	dst, _, delay := e.net.fate(e.id, to)
	if dst == nil {
		return nil, transport.ErrUnreachable
	}
	h := dst.currentHandler()
	if h == nil {
		return nil, transport.ErrUnreachable
	}
	type reply struct {
		b   []byte
		err error
	}
	ch := make(chan reply, 1)
	body = append([]byte(nil), body...)
	go func() {
		if delay > 0 {
			e.net.clock.Sleep(delay)
		}
		b, err := h.HandleRequest(ctx, e.id, kind, body)
		if err != nil {
			if _, ok := err.(*transport.RemoteError); !ok {
				err = &transport.RemoteError{Msg: err.Error()}
			}
		}
		ch <- reply{append([]byte(nil), b...), err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Notify implements transport.Transport.
func (e *Endpoint) Notify(to NodeID, kind uint8, body []byte) error {
	if e.isClosed() {
		return transport.ErrUnreachable
	}
	dst, copies, delay := e.net.fate(e.id, to)
	if dst == nil {
		return transport.ErrUnreachable
	}
	for range copies {
		e.net.post(dst, delivery{from: e.id, kind: kind, body: append([]byte(nil), body...), notify: true}, delay)
	}
	return nil
}

// SetPeer implements transport.Transport: every node on the Network is
// reachable by id, so addresses mean nothing here.
func (e *Endpoint) SetPeer(NodeID, string) {}

// RemovePeer implements transport.Transport (nothing to forget).
func (e *Endpoint) RemovePeer(NodeID) {}

// Close implements transport.Transport: the endpoint neither sends nor
// receives again (a crashed node). It returns once no delivery to its
// handler is under way, so it must not be called from the handler.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.gone
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	<-e.gone
	n := e.net
	n.mu.Lock()
	if n.endpoints[e.id] == e {
		delete(n.endpoints, e.id)
	}
	n.mu.Unlock()
	return nil
}

var _ transport.Transport = (*Endpoint)(nil)
