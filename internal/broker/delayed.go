package broker

import (
	"container/heap"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	"github.com/tern-broker/tern/internal/message"
)

// DelayedLog keeps the persistent messages waiting in durable
// x-delayed-message exchanges, so they survive a restart: the store's
// "delayed" record log, which the server wires in. A key holds one
// message.
type DelayedLog interface {
	// Put stores m under key; done learns when it is durable.
	Put(key string, m *message.Message, done message.Completion, token uint64) error
	// Remove deletes key's message.
	Remove(key string)
}

// DelayedRecord is a delayed message recovered from the log.
type DelayedRecord struct {
	Key string
	Msg *message.Message
}

// delayQueue holds messages published to an x-delayed-message exchange until
// their x-delay has passed, then routes them. Persistent messages published
// to a durable exchange are also in the DelayedLog until routed (RabbitMQ's
// plugin keeps every delayed message on disc; Tern keeps transient ones in
// memory only, as its queues do, and a non-durable exchange does not
// survive a restart to route them).
type delayQueue struct {
	x       *Exchange
	log     DelayedLog // nil: memory only
	mu      sync.Mutex
	items   delayHeap
	timer   clock.Timer
	seq     uint64
	stopped bool
}

type delayed struct {
	at  int64
	seq uint64 // keeps equal due times in publish order
	m   *message.Message
	key string // its record in the log; "" for none
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

func newDelayQueue(x *Exchange) *delayQueue {
	d := &delayQueue{x: x}
	if x.cfg.Durable {
		d.log = x.vhost.broker.cfg.Delayed
	}
	return d
}

// delayOf reads the x-delay header in milliseconds; non-positive or absent
// means no delay.
func delayOf(m *message.Message) (time.Duration, bool) {
	n, ok := argInt(m.Props.Headers["x-delay"])
	if !ok || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// delayedKey names a delayed message's record: its vhost and exchange, to
// find them at recovery, length-prefixed so any name round-trips, and a
// random id.
func delayedKey(vhost, exchange string) string {
	return strconv.Itoa(len(vhost)) + ":" + vhost + strconv.Itoa(len(exchange)) + ":" + exchange +
		strconv.FormatUint(rand.Uint64(), 36)
}

// parseDelayedKey returns the vhost and exchange of a record's key.
func parseDelayedKey(key string) (vhost, exchange string, ok bool) {
	cut := func(s string) (string, string, bool) {
		n, rest, ok := strings.Cut(s, ":")
		l, err := strconv.Atoi(n)
		if !ok || err != nil || l < 0 || l > len(rest) {
			return "", "", false
		}
		return rest[:l], rest[l:], true
	}
	vhost, rest, ok1 := cut(key)
	exchange, _, ok2 := cut(rest)
	return vhost, exchange, ok1 && ok2
}

// add holds m for delay. A persistent message in a durable exchange is
// logged first; done then learns when it is durable (pending reports
// that). An error means the log refused it: the publisher gets a nack.
func (d *delayQueue) add(m *message.Message, delay time.Duration, done message.Completion, token uint64) (pending bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false, nil
	}
	var key string
	if d.log != nil && m.Persistent() {
		key = delayedKey(d.x.vhost.name, d.x.cfg.Name)
		if err := d.log.Put(key, m, done, token); err != nil {
			return false, err
		}
		pending = true
	}
	d.pushLocked(m.Published+int64(delay), m, key)
	return pending, nil
}

func (d *delayQueue) pushLocked(at int64, m *message.Message, key string) {
	d.seq++
	heap.Push(&d.items, delayed{at: at, seq: d.seq, m: m, key: key})
	d.armLocked()
}

// restore puts back a message recovered from the log, due when it was
// before the restart (at once if that has passed).
func (d *delayQueue) restore(key string, m *message.Message) {
	delay, _ := delayOf(m)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.pushLocked(m.Published+int64(delay), m, key)
}

// clock is the broker's: a test's fake clock makes messages due.
func (d *delayQueue) clock() clock.Clock { return d.x.vhost.broker.cfg.Clock }

func (d *delayQueue) armLocked() {
	if len(d.items) == 0 {
		return
	}
	wait := time.Duration(d.items[0].at - d.clock().Now().UnixNano())
	if d.timer == nil {
		d.timer = d.clock().AfterFunc(max(wait, 0), d.fire)
	} else {
		d.timer.Reset(max(wait, 0))
	}
}

func (d *delayQueue) fire() {
	var due []delayed
	d.mu.Lock()
	now := d.clock().Now().UnixNano()
	for len(d.items) > 0 && d.items[0].at <= now {
		due = append(due, heap.Pop(&d.items).(delayed))
	}
	if !d.stopped {
		d.armLocked()
	}
	d.mu.Unlock()
	var s RouteScratch
	v := d.x.vhost
	for _, it := range due {
		if it.key == "" {
			v.deliverTo(v.routeAll(&s, d.x, it.m), it.m, nil, 0)
			continue
		}
		// The record goes once every durable queue that took the message
		// has it durably: a crash in between routes it again at start-up
		// (at least once), never loses it.
		// left starts far from zero, so Durable calls made before
		// deliverTo returns cannot reach it; adding the count then does.
		r := &routedDelayed{log: d.log, key: it.key, logger: v.broker.log}
		r.left.Store(1 << 30)
		res := v.deliverTo(v.routeAll(&s, d.x, it.m), it.m, r, 0)
		if r.left.Add(int32(res.Pending)-(1<<30)) == 0 {
			r.finish()
		}
	}
}

// routedDelayed removes a routed message's record once the queues that
// logged it have made it durable.
type routedDelayed struct {
	log  DelayedLog
	key  string
	left atomic.Int32
	kept atomic.Bool // a quorum queue did not apply it: keep the record

	logger *slog.Logger
}

func (r *routedDelayed) Durable(_ uint64, err error) {
	// A failed classic queue append is that queue's loss (its publisher
	// would get a nack); routing again after a restart would duplicate
	// the message in every other queue, so the record goes. A quorum
	// queue that did not apply the message in time (no leader) is no
	// storage failure: the record stays, and the message is routed again
	// at the next start — a duplicate in the queues that did take it
	// rather than a silent loss.
	var na *notAppliedError
	if errors.As(err, &na) {
		r.kept.Store(true)
	}
	if r.left.Add(-1) == 0 {
		r.finish()
	}
}

// finish removes the record, unless a quorum queue did not take the
// message.
func (r *routedDelayed) finish() {
	if r.kept.Load() {
		r.logger.Warn("a delayed message was not taken by a quorum queue; its record stays, to be routed again at the next start", "key", r.key)
		return
	}
	r.log.Remove(r.key)
}

// Pending returns how many messages wait for their delay.
func (d *delayQueue) Pending() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.items)
}

// stop drops the waiting messages of a deleted exchange, and their records.
func (d *delayQueue) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	for _, it := range d.items {
		if it.key != "" {
			d.log.Remove(it.key)
		}
	}
	d.items = nil
}

// RestoreDelayed hands the delayed messages recovered from the log back to
// their exchanges, after Restore declared them. A message whose exchange is
// gone (or is no longer a durable delayed one) is dropped with its record.
func (b *Broker) RestoreDelayed(recs []DelayedRecord) {
	log := b.cfg.Delayed
	dropped := 0
	for _, r := range recs {
		vh, name, ok := parseDelayedKey(r.Key)
		var x *Exchange
		if v := b.VHost(vh); v != nil && ok {
			x = v.exchange(name)
		}
		if x == nil || x.delayed == nil || x.delayed.log == nil {
			dropped++
			if log != nil {
				log.Remove(r.Key)
			}
			continue
		}
		x.delayed.restore(r.Key, r.Msg)
	}
	if len(recs) > 0 {
		b.log.Info("recovered delayed messages", "messages", len(recs)-dropped, "dropped_without_exchange", dropped)
	}
}

// DelayedMessages returns how many messages wait in the delayed-message
// exchange name; false if there is no such exchange.
func (v *VHost) DelayedMessages(name string) (int, bool) {
	x := v.exchange(name)
	if x == nil || x.delayed == nil {
		return 0, false
	}
	return x.delayed.Pending(), true
}
