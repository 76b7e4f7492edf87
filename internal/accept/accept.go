// Package accept runs a listener's accept loop for the protocol servers.
package accept

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Backoff bounds for retrying a failed accept: the same shape as net/http's
// server, doubling from the first pause to the cap. A pending connection
// stays in the kernel's backlog meanwhile, so retrying loses nothing.
const (
	firstPause = 5 * time.Millisecond
	maxPause   = time.Second
)

// Options carry what Loop reports about its listener. The zero value logs
// nothing and counts nothing.
type Options struct {
	// Log gets one error line when the process runs out of file
	// descriptors and one info line when accepting works again: one pair per
	// episode, however many retries it took.
	Log *slog.Logger
	// Exhausted, if set, counts those episodes (for the metrics).
	Exhausted *atomic.Uint64
}

// Loop accepts connections on ln and hands each to handle until ctx is done
// (which closes ln) or ln fails for good. Errors that end by themselves are
// retried with a backoff instead of ending the server: running out of file
// descriptors (EMFILE, ENFILE) or kernel memory, and timeouts. Before this a
// listener that hit EMFILE stopped accepting for good while the process kept
// running. It returns nil when ctx ended it.
func Loop(ctx context.Context, ln net.Listener, handle func(net.Conn), o Options) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var (
		pause    time.Duration // zero: not in an episode
		failures int
		since    time.Time
	)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryable(err) {
				return err
			}
			if pause == 0 {
				pause, since = firstPause, time.Now()
				if o.Exhausted != nil && exhausted(err) {
					o.Exhausted.Add(1)
				}
				if o.Log != nil {
					o.Log.Error("accept: cannot accept connections, retrying with backoff until it can",
						"listener", ln.Addr().String(), "err", err)
				}
			} else {
				pause = min(2*pause, maxPause)
			}
			failures++
			if !sleep(ctx, pause) {
				return nil
			}
			continue
		}
		if pause != 0 {
			if o.Log != nil {
				o.Log.Info("accept: accepting connections again",
					"listener", ln.Addr().String(), "failed_accepts", failures, "after", time.Since(since).Round(time.Millisecond).String())
			}
			pause, failures = 0, 0
		}
		handle(nc)
	}
}

// retryable reports whether an accept error ends by itself: descriptors or
// memory freed by closing connections, or a timeout.
func retryable(err error) bool {
	if exhausted(err) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// exhausted reports whether err is the process (EMFILE) or the system
// (ENFILE) running out of file descriptors.
func exhausted(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// sleep pauses for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
