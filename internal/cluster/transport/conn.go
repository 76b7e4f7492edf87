package transport

import (
	"go.etcd.io/raft/v3/raftpb"

	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// conn is one authenticated connection to a peer. Its reader goroutine
// decodes frames and calls the Handler in arrival order; its writer
// goroutine owns the socket's write side and writes everything queued
// since its last write in one writev. Senders append whole frames to
// out under mu and wake the writer; they never touch the socket, so
// SendRaft never waits on the network.
type conn struct {
	t      *TCP
	p      *peer
	nc     net.Conn
	br     *bufio.Reader
	dialed bool
	ctx    context.Context // cancelled when the connection closes
	cancel context.CancelFunc
	wake   chan struct{} // capacity 1: the writer has frames to write
	done   chan struct{} // closed once the connection is closed
	// inflight bounds the requests being handled at once; one beyond it
	// is answered with a busy error at once.
	inflight chan struct{}

	mu       sync.Mutex
	closed   bool
	closeErr error
	out      sendQueue // frames queued for the writer
	pending  map[uint64]chan reqResult
	// chaos is the delay hook's state: empty (no cost) unless built with
	// -tags chaos (delay_chaos.go).
	chaos chaosConn
}

// reqResult is the outcome of one Request.
type reqResult struct {
	body []byte
	err  error
}

func newConn(t *TCP, p *peer, nc net.Conn, br *bufio.Reader, dialed bool) *conn {
	ctx, cancel := context.WithCancel(t.ctx)
	return &conn{
		t: t, p: p, nc: nc, br: br, dialed: dialed,
		ctx: ctx, cancel: cancel,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		inflight: make(chan struct{}, t.cfg.MaxInflight),
		pending:  map[uint64]chan reqResult{},
	}
}

// smallFrame is the size up to which a frame may use the queue's
// reserve: heartbeats, votes and their responses, acks.
const smallFrame = 4 << 10

// enqueue appends a whole frame to the send queue. With limited set it
// refuses when the queue already holds frames and this one would take it
// past MaxQueueBytes (an empty queue takes any frame, so a snapshot
// larger than the limit still goes). Small frames may go an eighth
// beyond the limit: when appends to a slow follower fill the queue, the
// heartbeats and votes that keep leadership stable still get through.
// It reports false when the frame was not queued.
func (c *conn) enqueue(frame []byte, limited bool) bool {
	return c.enqueueFrame(frame, limited, false)
}

// enqueueFrame is enqueue; with owned, the queue may keep frame instead
// of copying it (the caller no longer uses it once it returns true).
func (c *conn) enqueueFrame(frame []byte, limited, owned bool) bool {
	c.mu.Lock()
	if c.closed || (limited && !c.fits(len(frame))) {
		c.mu.Unlock()
		return false
	}
	c.chaos.queued(c.out.bytes == 0)
	if owned {
		c.out.pushOwned(frame)
	} else {
		c.out.push(frame)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// fits reports whether a limited frame of n bytes fits the queue; c.mu
// is held.
func (c *conn) fits(n int) bool {
	max := c.t.cfg.MaxQueueBytes
	if n <= smallFrame {
		max += max / 8
	}
	return c.out.bytes == 0 || c.out.bytes+n <= max
}

// addPending registers a Request's reply channel; false if closed.
func (c *conn) addPending(id uint64, ch chan reqResult) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.pending[id] = ch
	return true
}

// takePending removes and returns a Request's reply channel.
func (c *conn) takePending(id uint64) chan reqResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.pending[id]
	delete(c.pending, id)
	return ch
}

var (
	errReplaced = errors.New("transport: replaced by a newer connection from the same peer")
	errClosed   = errors.New("transport: closed")
	errRemoved  = errors.New("transport: peer removed or its address changed")
)

// close closes the connection once: the socket, the context its handlers
// run under, and every Request waiting on it (they get ErrUnreachable at
// once rather than at their deadline).
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.closeErr = err
	pending := c.pending
	c.pending = nil
	release(c.out.take(nil))
	c.mu.Unlock()

	c.cancel()
	c.nc.Close()
	for _, ch := range pending {
		ch <- reqResult{err: fmt.Errorf("transport: connection to node %d lost (%v): %w", c.p.id, err, ErrUnreachable)}
	}
	c.p.detach(c)
	if f := c.t.cfg.OnDisconnect; f != nil && !errors.Is(err, errClosed) && !errors.Is(err, errRemoved) {
		f(c.p.id)
	}
	log := c.t.log.Info
	if errors.Is(err, errClosed) || errors.Is(err, errRemoved) {
		log = c.t.log.Debug
	} else if errors.Is(err, errProtocol) {
		log = c.t.log.Warn
	}
	log("cluster connection closed", "peer", c.p.id, "remote", c.nc.RemoteAddr().String(), "reason", err.Error())
	close(c.done)
}

// writeLoop is the connection's writer goroutine.
func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	ping := time.NewTicker(c.t.cfg.PingInterval)
	defer ping.Stop()
	wrote := false
	var batch, iov [][]byte
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		case <-ping.C:
			if !wrote {
				c.enqueue(appendHeader(nil, header{typ: framePing}), false)
			}
			wrote = false
			continue
		}
		c.mu.Lock()
		batch = c.out.take(batch)
		since := c.chaos.take()
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if !c.chaosHold(since) {
			return
		}
		var err error
		iov, err = c.write(batch, iov)
		release(batch)
		if err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return
		}
		wrote = true
	}
}

// writeStep is how much the writer hands the kernel per deadline: the
// write deadline measures progress (WriteTimeout without a byte taken),
// not the time a whole batch takes, so a snapshot on a slow link is not
// mistaken for a dead peer.
const writeStep = 1 << 20

// write writes the chunks in steps of at most writeStep bytes, each one
// writev with a fresh WriteTimeout deadline; iov is scratch space. batch
// is left as it was (its chunks go back to the pool afterwards).
func (c *conn) write(batch, iov [][]byte) ([][]byte, error) {
	i, off := 0, 0 // next byte to write: batch[i][off:]
	for i < len(batch) {
		iov = iov[:0]
		for size := 0; i < len(batch) && size < writeStep; {
			b := batch[i][off:]
			if n := writeStep - size; len(b) > n {
				iov = append(iov, b[:n])
				off += n
				break
			}
			iov = append(iov, b)
			size += len(b)
			i, off = i+1, 0
		}
		c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout))
		nb := net.Buffers(iov) // WriteTo consumes nb, a copy of iov's header
		n, err := nb.WriteTo(c.nc)
		c.p.bytesSent.Add(uint64(n))
		if err != nil {
			return iov, err
		}
	}
	return iov, nil
}

// readLoop is the connection's reader goroutine.
func (c *conn) readLoop() {
	defer c.t.wg.Done()
	// c.br reads through an idleReader: the read deadline follows.
	fr := frameReader{r: c.br, maxFrame: c.t.cfg.MaxFrame, maxSnap: c.t.cfg.MaxSnapshotFrame}
	for {
		h, body, err := fr.next()
		if err == nil && c.ctx.Err() != nil {
			// Closed (replaced, removed): frames still buffered are not
			// handed on, so an old connection's leftovers do not arrive
			// after its successor's messages.
			return
		}
		if err == nil {
			c.p.bytesRecv.Add(uint64(headerLen + len(body)))
			err = c.dispatch(h, body, fr.own)
		}
		if err != nil {
			if errors.Is(err, errProtocol) {
				c.t.protocolErrors.Add(1)
			}
			c.close(readErr(err))
			return
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, errProtocol) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("read: nothing received within the idle timeout: %w", err)
	}
	return fmt.Errorf("read: %w", err)
}

// dispatch handles one frame; an error closes the connection.
func (c *conn) dispatch(h header, body []byte, own bool) error {
	from := c.p.id
	switch h.typ {
	case frameRaft:
		msgs, err := decodeRaftBatch(body, own)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			// etcd raft names the transferee, not the sender, as From of
			// a MsgTransferLeader a follower forwards to its leader: that
			// one message type may name another node.
			if m.GetFrom() != from && m.GetType() != raftpb.MsgTransferLeader {
				if c.t.limit.allow(fmt.Sprintf("from %d %d", from, m.GetFrom())) {
					c.t.log.Warn("cluster raft batch dropped: message names another sender",
						"peer", from, "message_from", m.GetFrom(), "group", h.id)
				}
				c.p.dropped.Add(uint64(len(msgs)))
				return nil
			}
		}
		c.p.msgsRecv.Add(uint64(len(msgs)))
		c.t.cfg.Handler.HandleRaft(from, h.id, msgs)
	case frameRequest:
		timeout, rest, err := decodeRequest(body)
		if err != nil {
			return err
		}
		c.p.msgsRecv.Add(1)
		select {
		case c.inflight <- struct{}{}:
		default:
			// Refuse rather than wait: waiting would stall the reader and
			// with it the Raft traffic behind this request.
			c.t.busy.Add(1)
			c.reply(h.id, nil, fmt.Errorf("transport: node %d is busy: %d requests from node %d in progress", c.t.cfg.Self, cap(c.inflight), c.p.id))
			return nil
		}
		c.t.wg.Add(1)
		go c.serve(h.id, h.kind, timeout, append([]byte(nil), rest...))
	case frameReply, frameError:
		c.p.msgsRecv.Add(1)
		ch := c.takePending(h.id)
		if ch == nil {
			return nil // the caller gave up (its ctx ended)
		}
		if h.typ == frameReply {
			ch <- reqResult{body: append([]byte{}, body...)}
		} else {
			ch <- reqResult{err: &RemoteError{Msg: string(body)}}
		}
	case frameNotify:
		c.p.msgsRecv.Add(1)
		c.t.cfg.Handler.HandleNotify(from, h.kind, append([]byte(nil), body...))
	case framePing:
	}
	return nil
}

// serve runs one request on its own goroutine and queues the reply.
func (c *conn) serve(id uint64, kind uint8, timeoutMs uint64, body []byte) {
	defer c.t.wg.Done()
	defer func() { <-c.inflight }()
	ctx := c.ctx
	if timeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(min(timeoutMs, uint64(time.Hour/time.Millisecond)))*time.Millisecond)
		defer cancel()
	}
	reply, err := c.t.cfg.Handler.HandleRequest(ctx, c.p.id, kind, body)
	c.reply(id, reply, err)
}

// reply queues the answer to request id.
func (c *conn) reply(id uint64, reply []byte, err error) {
	typ, out := uint8(frameReply), reply
	if err != nil {
		typ, out = frameError, []byte(err.Error())
	}
	if len(out) > c.t.cfg.MaxFrame {
		typ, out = frameError, fmt.Appendf(nil, "transport: reply of %d bytes exceeds the frame limit of %d", len(out), c.t.cfg.MaxFrame)
	}
	frame, ferr := appendFrame(nil, typ, 0, id, nil, out)
	if ferr != nil {
		return
	}
	if c.enqueue(frame, false) {
		c.p.msgsSent.Add(1)
	}
}
