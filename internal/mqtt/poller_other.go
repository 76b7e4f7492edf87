//go:build !linux

package mqtt

import (
	"errors"
	"net"
	"syscall"
)

// pollerSupported is false off Linux: every connection keeps its goroutine.
const pollerSupported = false

type poller struct{}

func newPoller(*writeBatch) (*poller, error) {
	return nil, errors.New("mqtt: no event loop on this platform")
}
func (p *poller) arm(c *conn) error { return errors.New("mqtt: no event loop on this platform") }
func (p *poller) forget(c *conn)    {}
func (p *poller) disarm(c *conn)    {}
func (p *poller) close()            {}

func acceptRaw(ln net.Listener) net.Listener { return ln }
func pollRaw(nc net.Conn) syscall.RawConn    { return nil }
