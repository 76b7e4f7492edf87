package chaos

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-broker/tern/internal/chaos/checker"
)

// mqttOptions are a client's options: its own source address, no
// automatic reconnect (the runner reconnects, so it knows what was lost),
// short keep-alive so a paused node is noticed.
func mqttOptions(node *Node, id string, client int, clean bool) *paho.ClientOptions {
	o := paho.NewClientOptions().AddBroker("tcp://" + node.MQTTAddr()).SetClientID(id).SetCleanSession(clean)
	o.SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(3 * time.Second).SetPingTimeout(2 * time.Second)
	o.SetConnectTimeout(3 * time.Second).SetWriteTimeout(3 * time.Second).SetOrderMatters(true)
	o.SetDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ClientIP(client))}, Timeout: 2 * time.Second})
	return o
}

// mqttProducer publishes at qos (1 or 2), one at a time: a PUBACK (QoS 1)
// or PUBCOMP (QoS 2) is ok; a lost connection or an acknowledgement that
// does not come is unknown (MQTT 3.1.1 has no negative acknowledgement).
// Its session is clean, so nothing is resent on a new connection: an
// unknown QoS 2 publish was routed or not, once.
func (r *run) mqttProducer(ctx context.Context, name string, client int, topic string, qos byte, rate int) {
	var counter uint64
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for ctx.Err() == nil {
		node := r.pickNode(name)
		c := paho.NewClient(mqttOptions(node, name, client, true))
		if t := c.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			c.Disconnect(0)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		for ctx.Err() == nil && c.IsConnectionOpen() {
			select {
			case <-ctx.Done():
				continue
			case <-tick.C:
			}
			counter++
			value := fmt.Sprintf("%s-%d", name, counter)
			op := checker.Op{Process: name, Node: node.ID, Op: checker.OpPublish, Protocol: "mqtt", QoS: int(qos), Queue: topic, Type: "mqtt", Value: value, Hash: checker.HashOf(value), Start: now()}
			t := c.Publish(topic, qos, false, body(value))
			switch {
			case !t.WaitTimeout(r.prof.ConfirmTimeout):
				op.Outcome, op.Error = checker.Unknown, "no PUBACK/PUBCOMP in time"
			case t.Error() != nil:
				op.Outcome, op.Error = checker.Unknown, t.Error().Error()
			default:
				op.Outcome, op.End = checker.OK, now()
			}
			r.rec.add(op)
			if op.Outcome == checker.OK {
				r.trk.confirmed(topic, value)
			} else {
				break
			}
		}
		c.Disconnect(0)
	}
}

// mqttSubscriber keeps a persistent session (clean session off) subscribed
// to topic at qos and records every message; it reconnects until ctx
// ends, and leaves now and then while the workload runs (see away), so
// messages wait in its session queue on disk. ready is closed once the
// first SUBACK arrived, so no publish goes to a topic nobody is subscribed
// to.
//
// At QoS 2 it is the receiver MQTT 3.1.1 (4.3.3) describes, whose session
// state outlives a connection: a PUBLISH it acknowledged (PUBREC) may come
// again with DUP set and the same packet id when the PUBREC was lost, and
// the receiver must not deliver it twice. Paho keeps that state in its
// client, which the runner makes anew per connection, so the runner keeps
// it here: the packet ids it received, with their values, until the id
// comes again without DUP (a new message: the broker released the id,
// which it does only after PUBREL/PUBCOMP). A DUP resend of a remembered
// id and value is absorbed (counted, not a delivery); any other second
// delivery of a value is one, and fails exactly-once.
func (r *run) mqttSubscriber(ctx context.Context, name string, client int, topic string, qos byte, ready chan<- struct{}) {
	first := true
	aw := r.newAway(name)
	session := newQoS2Receiver()
	for ctx.Err() == nil {
		node := r.pickNode(name)
		lost := make(chan struct{})
		o := mqttOptions(node, name, client, false)
		o.SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			t := now()
			value, hash, problem := parseBody(m.Payload())
			if m.Qos() == 2 && !session.receive(m.MessageID(), m.Duplicate(), value) {
				r.absorbed.Add(1)
				return
			}
			r.rec.add(checker.Op{Process: name, Node: node.ID, Op: checker.OpConsume, Protocol: "mqtt", QoS: int(m.Qos()), Queue: m.Topic(), Type: "mqtt", Value: value, Hash: hash, Outcome: checker.OK, Redelivered: m.Duplicate(), Error: problem, Detail: fmt.Sprintf("packet id %d", m.MessageID()), Start: t, End: t})
			if value != "" {
				r.trk.got(m.Topic(), value)
			}
		})
		c := paho.NewClient(o)
		if t := c.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			c.Disconnect(0)
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		if t := c.Subscribe(topic, qos, nil); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			c.Disconnect(0)
			continue
		}
		if first {
			close(ready)
			first = false
		}
		leave := aw.stay()
	connected:
		for {
			select {
			case <-ctx.Done():
				break connected
			case <-lost:
				break connected
			case <-leave:
				if !r.draining.Load() {
					break connected
				}
				leave = nil
			}
		}
		c.Disconnect(100)
		aw.wait(ctx)
	}
}

// qos2Receiver is the receiver's QoS 2 session state (MQTT 3.1.1 4.3.3,
// Method B): the packet ids received, with their values, that the broker
// has not yet released. Safe for concurrent use.
type qos2Receiver struct {
	mu       sync.Mutex
	received map[uint16]string
}

func newQoS2Receiver() *qos2Receiver { return &qos2Receiver{received: map[uint16]string{}} }

// receive reports whether a QoS 2 PUBLISH is a delivery (true) or a resend
// of one already received (false): DUP set, with a packet id still held
// for the same value. A PUBLISH without DUP is a new message, so its
// packet id was released (the broker reuses an id only after PUBCOMP).
func (q *qos2Receiver) receive(pid uint16, dup bool, value string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	prev, held := q.received[pid]
	q.received[pid] = value
	return !(dup && held && prev == value)
}
