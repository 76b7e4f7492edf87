package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Result is what a run measured.
type Result struct {
	Config     Config        `json:"config"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	Sent       int64         `json:"sent"`
	Confirmed  int64         `json:"confirmed"`
	Nacked     int64         `json:"nacked"`
	Returned   int64         `json:"returned"`
	Expected   int64         `json:"expected_deliveries"` // sent × queues each message reaches
	Received   int64         `json:"received"`
	Lost       int64         `json:"lost"`
	Duplicates int64         `json:"duplicates"`
	// Redelivered counts deliveries marked redelivered (the broker gave
	// the message out before: a duplicate so marked is AMQP's
	// at-least-once, one not marked is a broker bug).
	Redelivered int64 `json:"redelivered"`
	Reordered   int64 `json:"reordered"`

	SentRate      float64 `json:"sent_msg_per_s"`
	SentMBps      float64 `json:"sent_mb_per_s"`
	ConfirmedRate float64 `json:"confirmed_msg_per_s"`
	ReceivedRate  float64 `json:"received_msg_per_s"`
	ReceivedMBps  float64 `json:"received_mb_per_s"`

	Latency        Percentiles `json:"latency"`         // end to end, from intended send time to delivery
	ConfirmLatency Percentiles `json:"confirm_latency"` // from intended send time to the confirm

	Timeline []Sample `json:"timeline"`

	// Idle-connections scenario.
	IdleConnections  int     `json:"idle_connections,omitempty"`
	ServerRSSBefore  int64   `json:"server_rss_before_bytes,omitempty"`
	ServerRSSAfter   int64   `json:"server_rss_after_bytes,omitempty"`
	BytesPerIdleConn float64 `json:"server_bytes_per_idle_connection,omitempty"`
	// ServerCPU is the CPU time (user + system) the --server-pid broker
	// used from the first publish until the consumers stopped.
	ServerCPU time.Duration `json:"server_cpu_ns,omitempty"`
	// ClientCPU is this bench process's own CPU time over a connect storm.
	ClientCPU time.Duration `json:"client_cpu_ns,omitempty"`
	// MQTT idle fleets (idlefleet.go).
	IdleLimitedBy        string        `json:"idle_limited_by,omitempty"` // what capped the count below the one asked for
	IdleSources          int           `json:"idle_source_addresses,omitempty"`
	IdleWorkers          int           `json:"idle_worker_processes,omitempty"`
	IdleConnectTime      time.Duration `json:"idle_connect_ns,omitempty"`
	IdleCPUPercent       float64       `json:"idle_server_cpu_percent"`
	IdleRetainedReceived int           `json:"idle_retained_received,omitempty"`
	ConnackLatency       Percentiles   `json:"connack_latency"` // connect storms: from each connect's due time to its CONNACK
}

// OK reports whether nothing was lost, duplicated or refused.
func (r *Result) OK() bool {
	return r.Lost == 0 && r.Duplicates == 0 && r.Nacked == 0 && r.Returned == 0
}

type run struct {
	cfg         Config
	c           counters
	lat         *latencies
	confLat     *latencies
	tr          *tracker
	queues      []string
	exchange    string
	runID       string
	start       time.Time
	perProducer sync.Map // MQTT: producer → *atomic.Int64 messages sent
	errMu       sync.Mutex
	err         error
}

func (r *run) fail(err error) {
	r.errMu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.errMu.Unlock()
}

// Run executes a benchmark. progress, when not nil, gets a line a second.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if cfg.IdleConns > 0 {
		return runIdle(ctx, cfg, progress)
	}
	r := &run{cfg: cfg, lat: newLatencies(), confLat: newLatencies(), tr: newTracker(),
		runID: fmt.Sprint(time.Now().UnixNano() % 1e9)}
	mqtt := cfg.Protocol == "mqtt"
	if !mqtt {
		if err := r.setup(); err != nil {
			return nil, err
		}
		defer r.teardown()
	}

	consumersReady := sync.WaitGroup{}
	var consWG sync.WaitGroup
	consCtx, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	for i := 0; i < cfg.Consumers; i++ {
		q := i % cfg.Queues
		single := cfg.Consumers/cfg.Queues == 1 && (cfg.Consumers%cfg.Queues == 0 || q >= cfg.Consumers%cfg.Queues)
		consumersReady.Add(1)
		consWG.Add(1)
		go func() {
			defer consWG.Done()
			if mqtt {
				r.mqttConsume(consCtx, i, &consumersReady)
				return
			}
			stream := q
			if cfg.Stream {
				stream, single = cfg.Queues+i, true // every stream consumer reads everything, in order
			}
			r.consume(consCtx, i, q, stream, single, &consumersReady)
		}()
	}
	consumersReady.Wait()
	if r.err != nil {
		return nil, r.err
	}

	var cpu0 time.Duration
	if cfg.ServerPID > 0 {
		cpu0, _ = processCPU(cfg.ServerPID)
	}
	r.start = time.Now()
	pubCtx, stopPublishing := context.WithTimeout(ctx, cfg.Duration)
	defer stopPublishing()
	var pubWG sync.WaitGroup
	for i := 0; i < cfg.Producers; i++ {
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			if mqtt {
				r.mqttProduce(pubCtx, uint32(i))
				return
			}
			r.produce(pubCtx, uint32(i))
		}()
	}
	timeline := r.monitor(progress, &pubWG)
	published := time.Since(r.start)

	// Let consumers catch up, bounded by Drain.
	expected := r.expected()
	deadline := time.Now().Add(cfg.Drain)
	for cfg.Consumers > 0 && r.c.received.Load() < expected && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stopConsumers()
	consWG.Wait()
	elapsed := time.Since(r.start)

	res := &Result{Config: cfg, Elapsed: elapsed, Timeline: *timeline}
	if cfg.ServerPID > 0 {
		if cpu1, err := processCPU(cfg.ServerPID); err == nil {
			res.ServerCPU = cpu1 - cpu0
		}
	}
	res.Sent, res.Confirmed, res.Nacked = r.c.sent.Load(), r.c.confirmed.Load(), r.c.nacked.Load()
	res.Returned, res.Received, res.Redelivered = r.c.returned.Load(), r.c.received.Load(), r.c.redelivered.Load()
	if cfg.Consumers > 0 {
		res.Expected = r.expected()
		r.tr.mu.Lock()
		res.Duplicates, res.Reordered = r.tr.dups, r.tr.reordered
		res.Lost = max(0, res.Expected-r.tr.unique)
		r.tr.mu.Unlock()
	}
	secs := published.Seconds()
	res.SentRate = float64(res.Sent) / secs
	res.SentMBps = float64(r.c.sentBytes.Load()) / secs / 1e6
	res.ConfirmedRate = float64(res.Confirmed) / secs
	res.ReceivedRate = float64(res.Received) / elapsed.Seconds()
	res.ReceivedMBps = res.ReceivedRate * float64(cfg.Size) / 1e6
	res.Latency, res.ConfirmLatency = r.lat.summary(), r.confLat.summary()
	return res, r.err
}

// expected is how many deliveries the messages sent so far should make.
func (r *run) expected() int64 {
	if r.cfg.Protocol != "mqtt" {
		return r.c.sent.Load() * int64(r.cfg.copies())
	}
	var n int64
	r.perProducer.Range(func(k, v any) bool {
		n += v.(*atomic.Int64).Load() * r.mqttCopies(k.(int)%r.cfg.Queues)
		return true
	})
	return n
}

// setup declares the queues (and the exchange for fanout/topic).
func (r *run) setup() error {
	url := r.cfg.URLs()[0]
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("bench: connecting to %s: %w", Redacted(url), err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	id := time.Now().UnixNano() % 1e9
	if r.cfg.Exchange != "direct" {
		r.exchange = fmt.Sprintf("tern-bench-%d", id)
		if err := ch.ExchangeDeclare(r.exchange, r.cfg.Exchange, false, true, false, false, nil); err != nil {
			return fmt.Errorf("bench: declaring exchange: %w", err)
		}
	}
	for i := 0; i < r.cfg.Queues; i++ {
		name := fmt.Sprintf("tern-bench-%d-%d", id, i)
		if _, err := ch.QueueDeclare(name, r.cfg.Persistent, false, false, false, r.cfg.queueArgs()); err != nil {
			return fmt.Errorf("bench: declaring %s queue: %w", r.cfg.QueueType, err)
		}
		r.queues = append(r.queues, name)
		if r.exchange != "" {
			key := ""
			if r.cfg.Exchange == "topic" {
				key = fmt.Sprintf("bench.%d.#", i)
			}
			if err := ch.QueueBind(name, key, r.exchange, false, nil); err != nil {
				return fmt.Errorf("bench: binding: %w", err)
			}
		}
	}
	return nil
}

func (r *run) teardown() {
	conn, err := amqp.Dial(r.cfg.URLs()[0])
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	for _, q := range r.queues {
		_, _ = ch.QueueDelete(q, false, false, false)
	}
	if r.exchange != "" {
		_ = ch.ExchangeDelete(r.exchange, false, false)
	}
}

// route returns where producer p publishes message i.
func (r *run) route(p uint32, i uint64) (exchange, key string) {
	switch r.cfg.Exchange {
	case "fanout":
		return r.exchange, ""
	case "topic":
		return r.exchange, fmt.Sprintf("bench.%d.x", int(p)%r.cfg.Queues)
	}
	return "", r.queues[int(p)%r.cfg.Queues]
}

func (r *run) produce(ctx context.Context, id uint32) {
	conn, err := amqp.Dial(r.cfg.producerURL(int(id)))
	if err != nil {
		r.fail(err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		r.fail(err)
		return
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))
	go func() {
		for range returns {
			r.c.returned.Add(1)
		}
	}()
	var window chan struct{}
	var sentAt []int64 // intended send time by delivery tag - 1
	var sentMu sync.Mutex
	var confDone chan struct{}
	if r.cfg.Confirm > 0 {
		if err := ch.Confirm(false); err != nil {
			r.fail(err)
			return
		}
		window = make(chan struct{}, r.cfg.Confirm)
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, r.cfg.Confirm))
		confDone = make(chan struct{})
		go func() {
			defer close(confDone)
			for c := range confirms {
				sentMu.Lock()
				at := sentAt[c.DeliveryTag-1]
				sentMu.Unlock()
				r.confLat.record(time.Since(time.Unix(0, at)))
				if c.Ack {
					r.c.confirmed.Add(1)
				} else {
					r.c.nacked.Add(1)
				}
				<-window
			}
		}()
	}
	mode := amqp.Transient
	if r.cfg.Persistent {
		mode = amqp.Persistent
	}
	body := make([]byte, r.cfg.Size)
	var interval time.Duration
	if r.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.cfg.Rate)
	}
	start := r.start
	for i := uint64(0); r.cfg.Count == 0 || i < uint64(r.cfg.Count); i++ {
		intended := time.Now()
		if interval > 0 {
			intended = start.Add(time.Duration(i) * interval)
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
		if window != nil {
			if !takeSlot(ctx, window) {
				break
			}
			sentMu.Lock()
			sentAt = append(sentAt, intended.UnixNano())
			sentMu.Unlock()
		}
		writeHeader(body, id, i, intended.UnixNano())
		ex, key := r.route(id, i)
		if err := ch.PublishWithContext(context.Background(), ex, key, false, false, amqp.Publishing{DeliveryMode: mode, Body: body}); err != nil {
			if !errors.Is(err, amqp.ErrClosed) {
				r.fail(fmt.Errorf("bench: publish: %w", err))
			}
			if window != nil {
				<-window // nothing was published for this slot
			}
			break
		}
		r.c.sent.Add(1)
		r.c.sentBytes.Add(int64(len(body)))
	}
	if window != nil {
		// Wait for the outstanding confirms before closing.
		deadline := time.After(r.cfg.Drain)
		for len(window) > 0 {
			select {
			case <-deadline:
				r.fail(fmt.Errorf("bench: %d publishes never confirmed", len(window)))
				return
			case <-time.After(time.Millisecond):
			}
		}
	}
}

func (r *run) consume(ctx context.Context, i, q, stream int, single bool, ready *sync.WaitGroup) {
	conn, err := amqp.Dial(r.cfg.consumerURL(i))
	if err != nil {
		r.fail(err)
		ready.Done()
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil && !r.cfg.AutoAck {
		err = ch.Qos(r.cfg.Prefetch, 0, false)
	}
	var msgs <-chan amqp.Delivery
	if err == nil {
		var args amqp.Table
		if r.cfg.Stream {
			args = amqp.Table{"x-stream-offset": "first"}
		}
		msgs, err = ch.Consume(r.queues[q], "", r.cfg.AutoAck, false, false, false, args)
	}
	ready.Done()
	if err != nil {
		r.fail(fmt.Errorf("bench: consume: %w", err))
		return
	}
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			now := time.Now()
			producer, seq, sentAt, err := readHeader(m.Body)
			if err != nil {
				continue
			}
			r.lat.record(now.Sub(time.Unix(0, sentAt)))
			r.tr.observe(stream, producer, seq, single)
			r.c.received.Add(1)
			if m.Redelivered {
				r.c.redelivered.Add(1)
			}
			if !r.cfg.AutoAck {
				n++
				if n%r.cfg.MultiAckEvery == 0 {
					_ = m.Ack(r.cfg.MultiAckEvery > 1)
				}
			}
		}
	}
}

// monitor samples the counters once a second until the producers finish,
// printing progress, and returns the timeline.
func (r *run) monitor(progress io.Writer, producers *sync.WaitGroup) *[]Sample {
	done := make(chan struct{})
	go func() { producers.Wait(); close(done) }()
	var timeline []Sample
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastSent, lastConf, lastRecv int64
	last := r.start
	sample := func() {
		now := time.Now()
		secs := now.Sub(last).Seconds()
		sent, conf, recv := r.c.sent.Load(), r.c.confirmed.Load()+r.c.nacked.Load(), r.c.received.Load()
		p50, p99, _ := r.lat.takeWindow()
		inflight := sent - conf
		if r.cfg.Confirm == 0 {
			inflight = r.expected() - recv
		}
		s := Sample{At: now.Sub(r.start), SentRate: float64(sent-lastSent) / secs, ConfirmedRate: float64(conf-lastConf) / secs,
			RecvRate: float64(recv-lastRecv) / secs, InFlight: inflight, P50: p50, P99: p99}
		timeline = append(timeline, s)
		lastSent, lastConf, lastRecv, last = sent, conf, recv, now
		if progress != nil {
			fmt.Fprintf(progress, "%5.1fs  sent %9.0f/s  confirmed %9.0f/s  received %9.0f/s  in-flight %7d  latency p50 %8v p99 %8v\n",
				s.At.Seconds(), s.SentRate, s.ConfirmedRate, s.RecvRate, s.InFlight, roundDur(p50), roundDur(p99))
		}
	}
	for {
		select {
		case <-t.C:
			sample()
		case <-done:
			if time.Since(last) > 100*time.Millisecond {
				sample()
			}
			return &timeline
		}
	}
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// takeSlot takes a place in the confirm window for the next publish, or
// says the run is over. A slot taken as the run ends goes back: select
// picks at random between a window with room and a done context, and a
// slot kept with nothing published for it was reported as a publish never
// confirmed (seen about once in a few hundred runs under load).
func takeSlot(ctx context.Context, window chan struct{}) bool {
	select {
	case window <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	if ctx.Err() != nil {
		<-window
		return false
	}
	return true
}
