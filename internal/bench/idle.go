package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// runIdle opens IdleConns connections (each with a channel), holds them for
// Duration and reports the broker's resident memory per connection when
// its pid is known (read from /proc, so the broker must run on this host).
func runIdle(ctx context.Context, cfg Config, progress io.Writer) (*Result, error) {
	if cfg.Protocol == "mqtt" && cfg.ConnectRate > 0 {
		return runConnectStorm(ctx, cfg, progress)
	}
	if cfg.Protocol == "mqtt" {
		return runIdleFleet(ctx, cfg, progress)
	}
	res := &Result{Config: cfg}
	dial := func() (io.Closer, error) {
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
