package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// runIdle opens IdleConns connections (each with a channel), holds them for
// Duration and reports the broker's resident memory per connection when
// its pid is known (read from /proc, so the broker must run on this host).
func runIdle(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	res := &Result{Config: cfg}
	// One connection first, so one-off costs of the first login (password
	// hashing, lazily built state) are in the baseline, not spread over
	// the idle connections.
	warm, err := amqp.Dial(cfg.URL)
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
	conns := make([]*amqp.Connection, 0, cfg.IdleConns)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < cfg.IdleConns; i++ {
		c, err := amqp.Dial(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("bench: idle connection %d: %w", i, err)
		}
		if _, err := c.Channel(); err != nil {
			return nil, err
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
