package chaos

import (
	"context"
	"fmt"
	"net"
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

// mqttProducer publishes at QoS 1, one at a time: a PUBACK is ok; a lost
// connection or a PUBACK that does not come is unknown (MQTT 3.1.1 has no
// negative acknowledgement).
func (r *run) mqttProducer(ctx context.Context, name string, client int, topic string, rate int) {
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
			op := checker.Op{Process: name, Node: node.ID, Op: checker.OpPublish, Protocol: "mqtt", QoS: 1, Queue: topic, Type: "mqtt", Value: value, Hash: checker.HashOf(value), Start: now()}
			t := c.Publish(topic, 1, false, body(value))
			switch {
			case !t.WaitTimeout(r.prof.ConfirmTimeout):
				op.Outcome, op.Error = checker.Unknown, "no PUBACK in time"
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
// to topic at QoS 1 and records every message; it reconnects until ctx
// ends, and leaves now and then while the workload runs (see away), so
// messages wait in its session queue on disk. ready is closed once the first SUBACK arrived, so no publish goes
// to a topic nobody is subscribed to.
func (r *run) mqttSubscriber(ctx context.Context, name string, client int, topic string, ready chan<- struct{}) {
	first := true
	aw := r.newAway(name)
	for ctx.Err() == nil {
		node := r.pickNode(name)
		lost := make(chan struct{})
		o := mqttOptions(node, name, client, false)
		o.SetConnectionLostHandler(func(paho.Client, error) { close(lost) })
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			t := now()
			value, hash, problem := parseBody(m.Payload())
			r.rec.add(checker.Op{Process: name, Node: node.ID, Op: checker.OpConsume, Protocol: "mqtt", QoS: int(m.Qos()), Queue: m.Topic(), Type: "mqtt", Value: value, Hash: hash, Outcome: checker.OK, Redelivered: m.Duplicate(), Error: problem, Start: t, End: t})
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
		if t := c.Subscribe(topic, 1, nil); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
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
