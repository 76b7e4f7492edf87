//go:build !chaos

package transport

import "time"

// chaosConn is empty without -tags chaos: the delay hook (delay_chaos.go)
// compiles to nothing.
type chaosConn struct{}

func (*chaosConn) queued(bool) {}

func (*chaosConn) take() time.Time { return time.Time{} }

func (*conn) chaosHold(time.Time) bool { return true }
