package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTT runs: producers publish to topics tern-bench/<run>/<i>; each consumer
// subscribes to one of those topics (or, with Wildcard, to all of them
// through tern-bench/<run>/#), so every subscriber of a topic gets every
// message published to it.

func (r *run) mqttTopic(i int) string { return fmt.Sprintf("tern-bench/%s/%d", r.runID, i) }

// mqttCopies is how many deliveries one message published to topic q makes.
func (r *run) mqttCopies(q int) int64 {
	if r.cfg.Wildcard {
		return int64(r.cfg.Consumers)
	}
	n := int64(0)
	for j := 0; j < r.cfg.Consumers; j++ {
		if j%r.cfg.Queues == q {
			n++
		}
	}
	return n
}

func (r *run) mqttClient(id string, onLost func(error)) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker(r.cfg.URL).SetClientID(id).SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectRetry(false).SetCleanSession(true).SetConnectTimeout(10 * time.Second).
		SetKeepAlive(60 * time.Second).SetOrderMatters(true).SetMaxResumePubInFlight(r.cfg.Confirm)
	if onLost != nil {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { onLost(err) })
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("bench: MQTT connect to %s: %v", Redacted(r.cfg.URL), tok.Error())
	}
	return c, nil
}

func (r *run) mqttConsume(ctx context.Context, i int, ready *sync.WaitGroup) {
	filter := r.mqttTopic(i % r.cfg.Queues)
	if r.cfg.Wildcard {
		filter = fmt.Sprintf("tern-bench/%s/#", r.runID)
	}
	c, err := r.mqttClient(fmt.Sprintf("tern-bench-%s-c%d", r.runID, i), nil)
	if err != nil {
		r.fail(err)
		ready.Done()
		return
	}
	defer c.Disconnect(100)
	tok := c.Subscribe(filter, byte(r.cfg.QoS), func(_ paho.Client, m paho.Message) {
		now := time.Now()
		producer, seq, sentAt, err := readHeader(m.Payload())
		if err != nil {
			return
		}
		r.lat.record(now.Sub(time.Unix(0, sentAt)))
		// With a wildcard, streams are told apart by the subscriber.
		r.tr.observe(i, producer, seq, true)
		r.c.received.Add(1)
	})
	ok := tok.WaitTimeout(10*time.Second) && tok.Error() == nil
	ready.Done()
	if !ok {
		r.fail(fmt.Errorf("bench: MQTT subscribe: %v", tok.Error()))
		return
	}
	<-ctx.Done()
}

func (r *run) mqttProduce(ctx context.Context, id uint32) {
	c, err := r.mqttClient(fmt.Sprintf("tern-bench-%s-p%d", r.runID, id), nil)
	if err != nil {
		r.fail(err)
		return
	}
	defer c.Disconnect(100)
	topic := r.mqttTopic(int(id) % r.cfg.Queues)
	sentBy := &atomic.Int64{}
	r.perProducer.Store(int(id), sentBy)
	qos := byte(r.cfg.QoS)
	window := make(chan struct{}, max(r.cfg.Confirm, 1))
	var outstanding sync.WaitGroup
	var interval time.Duration
	if r.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.cfg.Rate)
	}
	for i := uint64(0); r.cfg.Count == 0 || i < uint64(r.cfg.Count); i++ {
		intended := time.Now()
		if interval > 0 {
			intended = r.start.Add(time.Duration(i) * interval)
			if d := time.Until(intended); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		if qos > 0 && !takeSlot(ctx, window) { // the in-flight window, taken before publishing
			break
		}
		body := make([]byte, r.cfg.Size) // Paho keeps the payload until sent
		writeHeader(body, id, i, intended.UnixNano())
		tok := c.Publish(topic, qos, false, body)
		r.c.sent.Add(1)
		sentBy.Add(1)
		r.c.sentBytes.Add(int64(len(body)))
		if qos > 0 {
			outstanding.Add(1)
			go func(at time.Time) {
				defer outstanding.Done()
				if tok.WaitTimeout(r.cfg.Drain+r.cfg.Duration) && tok.Error() == nil {
					r.c.confirmed.Add(1)
					r.confLat.record(time.Since(at))
				} else {
					r.c.nacked.Add(1)
				}
				<-window
			}(intended)
		}
	}
	outstanding.Wait()
}
