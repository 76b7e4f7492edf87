package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqttwire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// IdleWorker is one client process of the idle-connections scenario (tern
// bench --idle-worker): it opens its share of the connections, says so on
// out, and then obeys lines on in until in closes, when it closes them all.
//
// Lines it writes: "open N" (progress), "ready N MILLIS" (all open, and how
// long it took), "received N" (connections that got the retained message),
// "error TEXT". Lines it reads: "subscribe TOPIC": every connection
// subscribes to TOPIC and waits for one PUBLISH on it.
type IdleWorker struct {
	Addr      string   // broker host:port
	Conns     int      // connections to open
	Sources   []string // local addresses to connect from, round-robin; none: the kernel's choice
	KeepAlive uint16   // seconds, in CONNECT
	ID        string   // client-id prefix, unique per worker
	Clean     bool     // Clean Session; false: persistent sessions
}

// idleClient is one idle connection.
type idleClient struct {
	nc net.Conn
}

// Run opens the connections and serves in until it closes or ctx ends.
func (w IdleWorker) Run(ctx context.Context, in io.Reader, out io.Writer) error {
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		fmt.Fprintf(out, format+"\n", a...)
		mu.Unlock()
	}
	start := time.Now()
	clients := make([]idleClient, w.Conns)
	var next, opened atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 16 { // concurrent dialers: connecting is latency-bound
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= w.Conns {
					return
				}
				src := ""
				if len(w.Sources) > 0 {
					src = w.Sources[i%len(w.Sources)]
				}
				nc, err := dialIdle(w.Addr, src, fmt.Sprintf("%s-%d", w.ID, i), w.KeepAlive, w.Clean)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("connection %d: %w", i, err))
					return
				}
				clients[i] = idleClient{nc: nc}
				if n := opened.Add(1); n%1000 == 0 {
					say("open %d", n)
				}
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range clients {
			if c.nc != nil {
				_ = c.nc.Close()
			}
		}
	}()
	if err, _ := firstErr.Load().(error); err != nil {
		say("error %s", strings.ReplaceAll(err.Error(), "\n", " "))
		return err
	}
	say("ready %d %d", w.Conns, time.Since(start).Milliseconds())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "subscribe":
			say("received %d", subscribeAll(clients, arg))
		}
	}
	return nil
}

// subscribeAll makes every client subscribe to topic and counts those that
// receive a PUBLISH on it within a minute.
func subscribeAll(clients []idleClient, topic string) int {
	var got atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if receiveOne(c.nc, topic) {
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(got.Load())
}

func receiveOne(nc net.Conn, topic string) bool {
	sub := &mqttwire.Subscribe{PacketID: 1, Subs: []mqttwire.Subscription{{Filter: topic, QoS: 0}}}
	if _, err := nc.Write(sub.Append(nil, mqttwire.V311)); err != nil {
		return false
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Minute))
	defer func() { _ = nc.SetReadDeadline(time.Time{}) }()
	rd := mqttwire.NewReader(bufio.NewReaderSize(nc, 512), 0)
	for range 8 {
		p, err := rd.ReadPacket(mqttwire.V311)
		if err != nil {
			return false
		}
		if pub, ok := p.(*mqttwire.Publish); ok && pub.Topic == topic {
			return true
		}
	}
	return false
}

// dialIdle opens an MQTT 3.1.1 connection (CONNECT, CONNACK) from src (""
// for any) and leaves it idle; a raw socket keeps the load generator's own
// memory small for tens of thousands of connections.
func dialIdle(addr, src, clientID string, keepAlive uint16, clean bool) (net.Conn, error) {
	d := net.Dialer{Timeout: 30 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &mqttwire.Connect{ProtocolName: "MQTT", Level: mqttwire.V311, CleanStart: clean, KeepAlive: keepAlive, ClientID: clientID}
	if _, err := nc.Write(c.Append(nil, mqttwire.V311)); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	p, err := mqttwire.NewReader(bufio.NewReaderSize(nc, 64), 0).ReadPacket(mqttwire.V311)
	if ack, ok := p.(*mqttwire.Connack); err != nil || !ok || ack.ReasonCode != 0 {
		_ = nc.Close()
		return nil, fmt.Errorf("MQTT CONNACK: %v %+v", err, p)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return nc, nil
}
