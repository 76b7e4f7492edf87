package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	mqttwire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// runIdle opens IdleConns connections (each with a channel), holds them for
// Duration and reports the broker's resident memory per connection when
// its pid is known (read from /proc, so the broker must run on this host).
func runIdle(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	dial := func() (io.Closer, error) {
		if cfg.Protocol == "mqtt" {
			return dialIdleMQTT(cfg.URLs()[0])
		}
		c, err := amqp.Dial(cfg.URLs()[0])
		if err != nil {
			return nil, err
		}
		if _, err := c.Channel(); err != nil {
			_ = c.Close()
			return nil, err
		}
		return c, nil
	}
	// One connection first, so one-off costs of the first login (password
	// hashing, lazily built state) are in the baseline, not spread over
	// the idle connections.
	warm, err := dial()
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer warm.Close()
	time.Sleep(time.Second)
	if cfg.ServerPID > 0 {
		rss, err := processRSS(cfg.ServerPID)
		if err != nil {
			return nil, err
		}
		res.ServerRSSBefore = rss
	}
	start := time.Now()
	conns := make([]io.Closer, 0, cfg.IdleConns)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < cfg.IdleConns; i++ {
		c, err := dial()
		if err != nil {
			return nil, fmt.Errorf("bench: idle connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if progress != nil && (i+1)%1000 == 0 {
			fmt.Fprintf(progress, "%d connections open\n", i+1)
		}
	}
	res.IdleConnections = len(conns)
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	if cfg.ServerPID > 0 {
		rss, err := processRSS(cfg.ServerPID)
		if err != nil {
			return nil, err
		}
		res.ServerRSSAfter = rss
		res.BytesPerIdleConn = float64(rss-res.ServerRSSBefore) / float64(len(conns))
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

var idleMQTTSeq atomic.Uint64

// dialIdleMQTT opens an MQTT 3.1.1 connection (CONNECT, CONNACK) with a
// long keep-alive and leaves it idle; a raw socket keeps the load
// generator's own memory small for tens of thousands of connections.
func dialIdleMQTT(url string) (io.Closer, error) {
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tcp://"), 10*time.Second)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("tern-bench-idle-%d-%d", os.Getpid(), idleMQTTSeq.Add(1))
	c := &mqttwire.Connect{ProtocolName: "MQTT", Level: mqttwire.V311, CleanStart: true, KeepAlive: 600, ClientID: id}
	if _, err := nc.Write(c.Append(nil, mqttwire.V311)); err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := mqttwire.NewReader(bufio.NewReaderSize(nc, 64), 0).ReadPacket(mqttwire.V311)
	if ack, ok := p.(*mqttwire.Connack); err != nil || !ok || ack.ReasonCode != 0 {
		_ = nc.Close()
		return nil, fmt.Errorf("MQTT CONNACK: %v %+v", err, p)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return nc, nil
}

// processRSS reads a process's resident set size in bytes from /proc.
func processRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: reading the server's memory: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS for pid %d", pid)
}
