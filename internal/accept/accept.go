// Package accept runs a listener's accept loop for the protocol servers.
package accept

import (
	"context"
	"errors"
	"net"
	"time"
)

// Loop accepts connections on ln and hands each to handle until ctx is done
// (which closes ln) or ln fails for good. Temporary errors, such as running
// out of file descriptors, are retried after a pause instead of ending the
// server. It returns nil when ctx ended it.
func Loop(ctx context.Context, ln net.Listener, handle func(net.Conn)) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		handle(nc)
	}
}
