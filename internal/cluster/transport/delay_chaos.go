//go:build chaos

package transport

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The delay hook, for `tern chaos` (this kernel has no netem): with
// TERN_CHAOS_CONTROL set, the file delay_ms there lists "ADDRESS MS"
// lines, ADDRESS a peer's cluster address (host:port) or host; every
// frame to that peer waits until it is MS old before it is written. The
// writer holds each batch until its oldest frame has waited the delay, so
// sparse traffic (heartbeats, votes) is delayed by exactly MS and frames
// that joined a batch later by less, never more; order is kept. Reading
// is not delayed: a link's two directions are two files' lines.

// controlEnv is clock.ControlEnv (transport imports nothing of ours).
const controlEnv = "TERN_CHAOS_CONTROL"

const delayFile = "delay_ms"

// delays maps a peer's address or host to its delay; nil is none.
var delays atomic.Pointer[map[string]time.Duration]

func init() {
	if dir := os.Getenv(controlEnv); dir != "" {
		go pollDelays(filepath.Join(dir, delayFile))
	}
}

// pollDelays rereads the file every 20 ms for the process's life.
func pollDelays(path string) {
	for {
		loadDelays(path)
		time.Sleep(20 * time.Millisecond)
	}
}

// loadDelays sets the delays from path (absent: none) and says on stderr
// when they change. A malformed file keeps the last setting.
func loadDelays(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		b = nil
	}
	m := map[string]time.Duration{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ms, err := strconv.Atoi(f[len(f)-1])
		if len(f) != 2 || err != nil || ms < 0 {
			fmt.Fprintf(os.Stderr, "chaos hook: %s: bad line %q\n", path, line)
			return
		}
		m[f[0]] = time.Duration(ms) * time.Millisecond
	}
	old := delays.Load()
	if old == nil && len(m) == 0 {
		delays.Store(&m)
		return
	}
	if old == nil || fmt.Sprint(*old) != fmt.Sprint(m) {
		delays.Store(&m)
		fmt.Fprintf(os.Stderr, "chaos hook: cluster send delays now %v\n", m)
	}
}

// peerDelay is the delay to a peer at addr.
func peerDelay(addr string) time.Duration {
	m := delays.Load()
	if m == nil || len(*m) == 0 {
		return 0
	}
	if d, ok := (*m)[addr]; ok {
		return d
	}
	host, _, _ := net.SplitHostPort(addr)
	return (*m)[host]
}

// chaosConn remembers when the oldest frame waiting for the writer was
// queued; conn.mu guards it.
type chaosConn struct{ since time.Time }

func (c *chaosConn) queued(empty bool) {
	if empty {
		c.since = time.Now()
	}
}

func (c *chaosConn) take() time.Time {
	t := c.since
	c.since = time.Time{}
	return t
}

// chaosHold waits until a batch whose oldest frame was queued at since
// has waited the peer's delay; false if the connection closed meanwhile.
func (c *conn) chaosHold(since time.Time) bool {
	d := peerDelay(c.p.address())
	if d <= 0 || since.IsZero() {
		return true
	}
	wait := time.Until(since.Add(d))
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
