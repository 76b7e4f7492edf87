package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// dialAMQP connects from a client address of its own to node.
func dialAMQP(node *Node, client int) (*amqp.Connection, error) {
	local := &net.TCPAddr{IP: net.ParseIP(ClientIP(client))}
	return amqp.DialConfig("amqp://guest:guest@"+node.AMQPAddr()+"/", amqp.Config{
		Heartbeat: 2 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}).Dial(network, addr)
			if err != nil {
				return nil, err
			}
			return c, c.SetDeadline(time.Now().Add(5 * time.Second)) // cleared after the handshake
		},
	})
}

// queueSpec is one queue of the workload.
type queueSpec struct {
	name string
	typ  string // classic, stream, quorum
}

func (q queueSpec) args() amqp.Table {
	if q.typ == "classic" {
		return nil
	}
	return amqp.Table{"x-queue-type": q.typ}
}

// closeWhen closes conn once ctx ends or stop (may be nil) is closed:
// amqp091's RPCs (channel open, qos, consume, confirm, queue.declare)
// wait for their reply with no deadline, so a broker that never answers
// while its heartbeats go on would block the run past its budget.
// Closing the connection makes every RPC blocked on it return an error.
// Call the returned release once done with conn.
func closeWhen(ctx context.Context, conn *amqp.Connection, stop <-chan struct{}) (release func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		case <-done:
			return
		}
		conn.Close()
	}()
	return func() { close(done) }
}

// declareQueues declares the workload's queues on node before it starts.
func declareQueues(ctx context.Context, node *Node, qs []queueSpec) error {
	c, err := dialAMQP(node, 0)
	if err != nil {
		return err
	}
	defer c.Close()
	defer closeWhen(ctx, c, nil)()
	ch, err := c.Channel()
	if err != nil {
		return err
	}
	for _, q := range qs {
		if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args()); err != nil {
			return fmt.Errorf("chaos: declare %s: %w", q.name, err)
		}
	}
	return nil
}

// amqpProducer publishes value after value to q with confirms, at most
// window unconfirmed, at rate per second, until ctx ends; then it waits
// (bounded) for the last confirms. A lost connection makes every pending
// publish unknown and the producer reconnects.
func (r *run) amqpProducer(ctx context.Context, name string, client int, q queueSpec, rate int) {
	var counter uint64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for ctx.Err() == nil {
		node := r.pickNode(name)
		conn, err := dialAMQP(node, client)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		// Not closed when ctx (the workload) ends: the last confirms are
		// still due then. stopAll ends the wait for them.
		release := closeWhen(context.Background(), conn, r.stopAll)
		r.publishOn(ctx, conn, node, name, q, tick.C, &counter)
		release()
		conn.Close()
	}
}

type pendingPub struct {
	tag uint64
	op  checker.Op
}

func (r *run) publishOn(ctx context.Context, conn *amqp.Connection, node *Node, name string, q queueSpec, tick <-chan time.Time, counter *uint64) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	if err := ch.Confirm(false); err != nil {
		return
	}
	window := r.prof.Window
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window+1))
	pending := map[uint64]checker.Op{}
	var tag uint64
	progress := time.Now()
	check := time.NewTicker(250 * time.Millisecond)
	defer check.Stop()
	defer func() { // whatever is still pending has an unknown outcome
		var rest []pendingPub
		for t, op := range pending {
			rest = append(rest, pendingPub{t, op})
		}
		slices.SortFunc(rest, func(a, b pendingPub) int { return cmp.Compare(a.tag, b.tag) })
		for _, p := range rest {
			p.op.Outcome, p.op.Error = checker.Unknown, "connection lost or confirm timed out"
			r.rec.add(p.op)
		}
	}()
	for {
		var next <-chan time.Time
		if len(pending) < window && ctx.Err() == nil {
			next = tick
		}
		if ctx.Err() != nil && len(pending) == 0 {
			return
		}
		select {
		case <-next:
			*counter++
			value := fmt.Sprintf("%s-%d", name, *counter)
			op := checker.Op{Process: name, Node: node.ID, Op: checker.OpPublish, Protocol: "amqp", Queue: q.name, Type: q.typ, Value: value, Hash: checker.HashOf(value), Start: now()}
			pctx, cancel := context.WithTimeout(context.Background(), r.prof.ConfirmTimeout)
			err := ch.PublishWithContext(pctx, "", q.name, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body(value)})
			cancel()
			if err != nil {
				op.Outcome, op.Error, op.End = checker.Unknown, err.Error(), now()
				r.rec.add(op)
				return
			}
			tag++
			if len(pending) == 0 {
				progress = time.Now()
			}
			pending[tag] = op
		case c, ok := <-confirms:
			if !ok {
				return
			}
			op, found := pending[c.DeliveryTag]
			if !found {
				continue
			}
			delete(pending, c.DeliveryTag)
			progress = time.Now()
			op.End = now()
			if c.Ack {
				op.Outcome = checker.OK
				r.rec.add(op)
				r.trk.confirmed(q.name, op.Value)
			} else {
				op.Outcome, op.Error = checker.Fail, "nack"
				r.rec.add(op)
			}
		case <-check.C:
			if len(pending) > 0 && time.Since(progress) > r.prof.ConfirmTimeout {
				return
			}
		case <-r.stopAll:
			return
		}
	}
}

// amqpConsumer consumes q with manual acks and records every delivery,
// reconnecting until ctx ends. A stream reader subscribes at the offset
// after the last one it read (from 0), and records that subscribe. While
// the workload runs it leaves now and then (see away), so a backlog is on
// disk when faults strike and unacked deliveries are requeued.
func (r *run) amqpConsumer(ctx context.Context, name string, client int, q queueSpec) {
	next := int64(0)
	aw := r.newAway(name)
	for ctx.Err() == nil {
		node := r.pickNode(name)
		conn, err := dialAMQP(node, client)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		release := closeWhen(ctx, conn, nil)
		r.consumeOn(ctx, conn, node, name, q, &next, aw.stay())
		release()
		conn.Close()
		aw.wait(ctx)
	}
}

func (r *run) consumeOn(ctx context.Context, conn *amqp.Connection, node *Node, name string, q queueSpec, next *int64, leave <-chan time.Time) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	if err := ch.Qos(20, 0, false); err != nil {
		return
	}
	var args amqp.Table
	start := now()
	if q.typ == "stream" {
		args = amqp.Table{"x-stream-offset": *next}
	}
	ds, err := ch.Consume(q.name, name, false, false, false, false, args)
	if err != nil {
		return
	}
	if q.typ == "stream" {
		at := *next
		r.rec.add(checker.Op{Process: name, Node: node.ID, Op: checker.OpSubscribe, Protocol: "amqp", Queue: q.name, Type: q.typ, Outcome: checker.OK, Offset: &at, Start: start, End: now()})
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-leave:
			if !r.draining.Load() {
				return
			}
			leave = nil
		case d, ok := <-ds:
			if !ok {
				return
			}
			t := now()
			value, hash, problem := parseBody(d.Body)
			op := checker.Op{Process: name, Node: node.ID, Op: checker.OpConsume, Protocol: "amqp", Queue: q.name, Type: q.typ, Value: value, Hash: hash, Outcome: checker.OK, Redelivered: d.Redelivered, Error: problem, Start: t, End: t}
			if q.typ == "stream" {
				if o, ok := d.Headers["x-stream-offset"].(int64); ok {
					op.Offset = &o
					*next = o + 1
				} else {
					op.Error = fmt.Sprintf("no x-stream-offset header (%T)", d.Headers["x-stream-offset"])
				}
			}
			r.rec.add(op)
			if value != "" {
				r.trk.got(q.name, value)
			}
			if err := d.Ack(false); err != nil {
				return
			}
		}
	}
}

// metaClient declares, deletes and checks a few scratch queues at random,
// recording each as a metadata op for the linearizability check.
func (r *run) metaClient(ctx context.Context, name string, client int, seed uint64) {
	rng := newRNG(seed, 0x6d657461)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		node := r.pickNode(name)
		conn, err := dialAMQP(node, client)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		release := closeWhen(ctx, conn, r.stopAll) // an op cut short is recorded unknown
		r.metaOn(ctx, conn, node, name, tick.C, rng.IntN)
		release()
		conn.Close()
	}
}

func (r *run) metaOn(ctx context.Context, conn *amqp.Connection, node *Node, name string, tick <-chan time.Time, intn func(int) int) {
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		q := fmt.Sprintf("chaos-meta-%d", intn(3))
		op := checker.Op{Process: name, Node: node.ID, Protocol: "amqp", Queue: q, Type: "classic", Start: now()}
		switch intn(3) {
		case 0:
			op.Op = checker.OpDeclare
			_, err = ch.QueueDeclare(q, true, false, false, false, nil)
		case 1:
			op.Op = checker.OpDelete
			_, err = ch.QueueDelete(q, false, false, false)
		default:
			op.Op = checker.OpExists
			_, err = ch.QueueDeclarePassive(q, true, false, false, false, nil)
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				err = nil
				op.Exists = new(bool)
			} else if err == nil {
				op.Exists = new(bool)
				*op.Exists = true
			}
		}
		op.End = now()
		var ae *amqp.Error
		switch {
		case err == nil:
			op.Outcome = checker.OK
		case errors.As(err, &ae) && ae.Server && ae.Recover:
			// a channel exception the broker sent: a definite no
			op.Outcome, op.Error = checker.Fail, err.Error()
		default: // the connection went: it may or may not have happened
			op.Outcome, op.Error, op.End = checker.Unknown, err.Error(), 0
		}
		r.rec.add(op)
		if err != nil || ch.IsClosed() {
			if ch, err = conn.Channel(); err != nil {
				return
			}
		}
	}
}
