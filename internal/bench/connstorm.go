package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runConnectStorm opens cfg.IdleConns MQTT connections at cfg.ConnectRate
// a second, open-loop: each connection's CONNACK latency counts from the
// moment it was due, so a broker falling behind shows in the percentiles
// instead of slowing the storm down. The connections are held until all
// are open (a reconnect storm refilling a broker), then closed.
func runConnectStorm(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	addr := strings.TrimPrefix(cfg.URLs()[0], "tcp://")
	host, _, _ := net.SplitHostPort(addr)
	n := min(cfg.IdleConns, raiseOpenFileLimit()-brokerFDReserve)
	sources := idleSources(host, cfg.IdleSources, n)
	lat := newLatencies()
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	var cpu0 time.Duration
	if cfg.ServerPID > 0 {
		cpu0, _ = processCPU(cfg.ServerPID)
	}
	interval := time.Duration(float64(time.Second) / cfg.ConnectRate)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		src := ""
		if len(sources) > 0 {
			src = sources[i%len(sources)]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := dialIdle(addr, src, fmt.Sprintf("tern-bench-storm-%d-%d", os.Getpid(), i), uint16(cfg.IdleKeepAlive), !cfg.Persistent311)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			lat.record(time.Since(due))
			conns[i] = nc
		}()
		if progress != nil && (i+1)%5000 == 0 {
			fmt.Fprintf(progress, "%d connects issued\n", i+1)
		}
	}
	wg.Wait()
	res.IdleConnectTime = time.Since(start)
	if cfg.ServerPID > 0 {
		if cpu1, err := processCPU(cfg.ServerPID); err == nil {
			res.ServerCPU = cpu1 - cpu0
		}
	}
	res.IdleConnections = n - int(failed.Load())
	res.IdleSources = len(sources)
	res.ConnackLatency = lat.summary()
	res.Elapsed = time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		return res, fmt.Errorf("bench: %d of %d connects failed, the first: %w", failed.Load(), n, err)
	}
	return res, nil
}
