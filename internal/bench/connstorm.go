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
	"syscall"
	"time"
)

// runConnectStorm opens cfg.IdleConns MQTT connections at cfg.ConnectRate
// a second, open-loop: each connection's CONNACK latency counts from the
// moment it was due, so a broker falling behind (or the client itself)
// shows in the percentiles instead of slowing the storm down. The
// connections are held until all are open (a reconnect storm refilling a
// broker), then closed.
//
// On Linux the client is one pacing goroutine opening non-blocking sockets
// and one event loop over epoll (connstorm_linux.go): a goroutine and a
// blocking dial per connection cost the client about as much CPU as the
// broker's whole connect, and on a small machine the two share the cores.
// The client's own CPU time is reported beside the broker's.
func runConnectStorm(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	addr := strings.TrimPrefix(cfg.URLs()[0], "tcp://")
	host, _, _ := net.SplitHostPort(addr)
	n := min(cfg.IdleConns, raiseOpenFileLimit()-brokerFDReserve)
	sources := idleSources(host, cfg.IdleSources, n)
	st := &storm{
		addr: addr, sources: sources, n: n, clean: !cfg.Persistent311, keepAlive: uint16(cfg.IdleKeepAlive),
		interval: time.Duration(float64(time.Second) / cfg.ConnectRate), lat: newLatencies(), progress: progress,
		idPrefix: fmt.Sprintf("tern-bench-storm-%d-", os.Getpid()),
	}
	var cpu0 time.Duration
	if cfg.ServerPID > 0 {
		cpu0, _ = processCPU(cfg.ServerPID)
	}
	self0 := selfCPU()
	start := time.Now()
	closeAll, err := st.run(ctx, start)
	if closeAll != nil {
		defer closeAll()
	}
	if err != nil && st.done.Load()+st.failed.Load() == 0 {
		return nil, err
	}
	res.IdleConnectTime = time.Since(start)
	res.ClientCPU = selfCPU() - self0
	if cfg.ServerPID > 0 {
		if cpu1, err := processCPU(cfg.ServerPID); err == nil {
			res.ServerCPU = cpu1 - cpu0
		}
	}
	res.IdleConnections = int(st.done.Load())
	res.IdleSources = len(sources)
	res.ConnackLatency = st.lat.summary()
	res.Elapsed = time.Since(start)
	if err != nil {
		return res, err
	}
	if err, _ := st.firstErr.Load().(error); err != nil {
		return res, fmt.Errorf("bench: %d of %d connects failed, the first: %w", st.failed.Load(), n, err)
	}
	return res, nil
}

// storm is one connect storm's plan and tallies.
type storm struct {
	addr      string
	sources   []string // local addresses to connect from, round-robin; none: the kernel's choice
	n         int
	clean     bool
	keepAlive uint16
	interval  time.Duration // between due times
	idPrefix  string        // client ids are idPrefix + the connection's index
	lat       *latencies
	progress  io.Writer

	done, failed atomic.Int64
	firstErr     atomic.Value
}

// due is when connection i is due: the open-loop schedule.
func (st *storm) due(start time.Time, i int) time.Time {
	return start.Add(time.Duration(i) * st.interval)
}

func (st *storm) fail(err error) {
	st.failed.Add(1)
	st.firstErr.CompareAndSwap(nil, err)
}

func (st *storm) issued(i int) {
	if st.progress != nil && (i+1)%5000 == 0 {
		fmt.Fprintf(st.progress, "%d connects issued\n", i+1)
	}
}

// runDial is the portable storm: a goroutine and a blocking dial per
// connection. It returns a function closing what it opened.
func (st *storm) runDial(ctx context.Context, start time.Time) (func(), error) {
	conns := make([]net.Conn, st.n)
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	var wg sync.WaitGroup
	for i := range st.n {
		due := st.due(start, i)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				wg.Wait()
				return closeAll, ctx.Err()
			}
		}
		src := ""
		if len(st.sources) > 0 {
			src = st.sources[i%len(st.sources)]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := dialIdle(st.addr, src, fmt.Sprint(st.idPrefix, i), st.keepAlive, st.clean)
			if err != nil {
				st.fail(err)
				return
			}
			st.lat.record(time.Since(due))
			st.done.Add(1)
			conns[i] = nc
		}()
		st.issued(i)
	}
	wg.Wait()
	return closeAll, nil
}

// selfCPU is this process's CPU time (user + system) so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
