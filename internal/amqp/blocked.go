package amqp

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/tern-broker/tern/internal/wire/amqp091"
)

// errPeerGone ends a connection whose client went away while it was
// blocked by a resource alarm.
var errPeerGone = errors.New("amqp: client gone while blocked by an alarm")

const (
	// blockedPoll is how often a blocked connection re-checks the alarm
	// and its client while reading ahead.
	blockedPoll = 200 * time.Millisecond
	// blockedReadAhead bounds what a blocked connection reads ahead of its
	// frame parser; past it TCP pushes back on the publisher.
	blockedReadAhead = 256 << 10
	// blockedProbe spaces the heartbeat frames that probe a blocked
	// connection whose read-ahead is full.
	blockedProbe = time.Second
)

// sockReader is the socket as the frame reader sees it. It counts bytes
// and, before each read from the socket, re-arms the heartbeat deadline:
// the deadline is about the socket being silent, not about how long the
// reader takes over what it already has (a throttled publisher's backlog
// can take longer than two heartbeats). Bytes read ahead while the
// connection was blocked come first.
type sockReader struct {
	c      *connection
	ahead  []byte    // read while blocked, not yet parsed
	probed time.Time // the last heartbeat probe of a blocked, full connection
}

func (r *sockReader) Read(p []byte) (int, error) {
	if len(r.ahead) > 0 {
		n := copy(p, r.ahead)
		r.ahead = r.ahead[n:]
		if len(r.ahead) == 0 {
			r.ahead = nil // do not pin a blocked episode's buffer
		}
		return n, nil
	}
	r.c.armReadDeadline()
	n, err := r.c.nc.Read(p)
	r.c.srv.stats.bytesIn.Add(uint64(n))
	r.c.st.recvOct.Add(uint64(n))
	return n, err
}

// readAhead reads what the client sent into the ahead buffer, waiting at
// most blockedPoll. heard says whether bytes arrived; an error means the
// socket is finished (closed, reset, or failed).
func (r *sockReader) readAhead() (heard bool, err error) {
	if len(r.ahead) >= blockedReadAhead {
		// Full: the client is sending, and TCP now holds it back. A
		// client that dies now leaves unread data before its FIN or
		// reset, so reading would not see it: ask the kernel instead.
		// A FIN can even stay queued behind the dead client's unsent
		// publishes, which our zero window keeps from leaving; so probe
		// with a heartbeat frame now and then, even with heartbeats off
		// (clients ignore one): a dead client's kernel answers it with a
		// reset, which the poll and the writer see.
		if peerHungUp(r.c.nc) {
			return false, errPeerGone
		}
		if now := time.Now(); now.Sub(r.probed) >= blockedProbe {
			r.probed = now
			r.c.out.Append(amqp091.AppendHeartbeat)
		}
		select {
		case <-r.c.alarmWake:
		case <-r.c.writerOut:
			return true, errPeerGone
		case <-time.After(blockedPoll):
		}
		return true, nil
	}
	if cap(r.ahead)-len(r.ahead) < 4096 {
		grown := make([]byte, len(r.ahead), min(max(2*cap(r.ahead), 16<<10), blockedReadAhead+4096))
		copy(grown, r.ahead)
		r.ahead = grown
	}
	_ = r.c.nc.SetReadDeadline(time.Now().Add(blockedPoll))
	n, err := r.c.nc.Read(r.ahead[len(r.ahead):cap(r.ahead)])
	r.ahead = r.ahead[:len(r.ahead)+n]
	r.c.srv.stats.bytesIn.Add(uint64(n))
	r.c.st.recvOct.Add(uint64(n))
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return n > 0, err
	}
	return n > 0, nil
}

// waitWhileBlocked holds a publish while a resource alarm is on, as
// RabbitMQ does: a connection is blocked when it next publishes, and only
// publishing stalls; consumers keep draining. The reader parses no more
// frames, but keeps reading ahead (bounded, so TCP still pushes back on the
// publisher) to notice a client that dies meanwhile: a closed or reset
// socket, a failed writer or missed heartbeats end the connection at once,
// releasing its exclusive queues and unacked messages and dropping the held
// publish, instead of keeping it all until the alarm clears.
func (c *connection) waitWhileBlocked() error {
	c.published.Store(true)
	reason := c.blockReason()
	if reason == "" {
		return nil
	}
	c.notifyBlocked(reason)
	c.srv.stats.blocked.Add(1)
	defer c.srv.stats.blocked.Add(-1)
	c.flushConfirms()
	// Silence is timed by the broker's clock (socket reads poll on real
	// time), so a test can advance past the heartbeat timeout.
	clk := c.srv.broker.Clock()
	lastHeard := clk.Now()
	for c.blockReason() != "" && !c.forced.Load() {
		heard, err := c.sock.readAhead()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, errPeerGone) {
				c.log.Debug("socket failed while blocked", "err", err)
			}
			c.log.Info("client went away while its connection was blocked")
			return errPeerGone
		}
		select {
		case <-c.writerOut:
			c.log.Info("writer failed while the connection was blocked")
			return errPeerGone
		default:
		}
		if heard {
			lastHeard = clk.Now()
		} else if c.heartbeat > 0 && clk.Now().Sub(lastHeard) > 2*c.heartbeat {
			c.log.Warn("missed heartbeats from client while blocked, closing", "timeout", 2*c.heartbeat)
			return errPeerGone
		}
	}
	c.notifyBlocked("")
	return nil
}
