package forward

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/cluster/transport"
)

// replyLoser wraps a client node's transport: a request of a chosen kind
// reaches the owner and is served, but its reply is lost (the caller gets
// an error), as when the reply comes after the caller's deadline.
type replyLoser struct {
	transport.Transport
	mu   sync.Mutex
	kind uint8
	n    int    // replies of kind still to lose
	hold func() // runs before a lost reply's error is returned
}

func (r *replyLoser) Request(ctx context.Context, to transport.NodeID, kind uint8, body []byte) ([]byte, error) {
	reply, err := r.Transport.Request(ctx, to, kind, body)
	r.mu.Lock()
	lose := kind == r.kind && r.n > 0
	if lose {
		r.n--
	}
	r.mu.Unlock()
	if lose && err == nil {
		if r.hold != nil {
			r.hold()
		}
		return nil, context.DeadlineExceeded
	}
	return reply, err
}

func losingClient(kind uint8, n int) (func(*Config), *replyLoser) {
	r := &replyLoser{kind: kind, n: n}
	return func(c *Config) {
		if c.Self == 2 {
			r.Transport = c.Transport
			c.Transport = r
		}
	}, r
}

// received waits (2 s at most) until nd's Forwarder has received n
// deliveries.
func received(nd *node, n uint64) {
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if nd.f.Stats().DeliveriesReceived >= n {
			return
		}
	}
}

// A consume whose reply was lost (finding 3): the owner registered the
// proxy and pushed it deliveries, the client's node reported a failure.
// Nothing may reach the consumer that was refused, and the owner must not
// keep the pushed messages unacked while the client node stays (another
// consumer keeps its session alive): they go back to the queue.
func TestConsumeReplyLostRequeues(t *testing.T) {
	tweak, rl := losingClient(KindConsume, 1)
	ns := newCluster(t, 2, tweak)
	// The deliveries arrive before the consume's failure is known.
	rl.hold = func() { received(ns[1], 5) }
	declare(t, ns[0], "q", nil)
	declare(t, ns[0], "other", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	var s broker.RouteScratch
	for _, b := range bodies("m", 0, 5) {
		publish(t, ns[0], &s, "q", b, false, nil, 0)
	}
	c := newConsumer(10, false)
	err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 10})
	var be *broker.Error
	if !errors.As(err, &be) || be.Kind != broker.KindNotFound {
		t.Fatalf("consume with its reply lost: %v", err)
	}
	// Another consumer of the same owner keeps the session alive.
	keep := newConsumer(1, false)
	if err := queueOf(t, ns[1], "other").Consume(keep, broker.ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the pushed messages back in the queue", nil, func() bool {
		r, u, cons := q1.Counts()
		return r == 5 && u == 0 && cons == 0
	})
	if g, _, _ := c.snapshot(); len(g) != 0 {
		t.Fatalf("the refused consumer got %v", g)
	}
	// And a consumer now gets them all.
	c2 := newConsumer(10, false)
	if err := q2.Consume(c2, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "5 deliveries", c2.ch, func() bool { g, _, _ := c2.snapshot(); return len(g) == 5 })
}

// A consume and its own cancel handled in the other order (finding 5):
// requests run on goroutines of their own, so a client node's cancel can
// be served before the consume it follows. The consume must then be
// refused, not leave a proxy nobody cancels.
func TestCancelBeforeConsumeLeavesNoProxy(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "q", nil)
	q1 := queueOf(t, ns[0], "q")
	const epoch, id = 77, 5
	ctx := context.Background()
	for _, op := range []byte{opCancel, opAbort} {
		cid := uint64(id + op)
		if _, err := ns[0].f.HandleRequest(ctx, 2, KindControl, appendControl(nil, epoch, []ctlOp{{Op: op, Consumer: cid}})); err != nil {
			t.Fatal(err)
		}
		req := consumeReq{Epoch: epoch, Consumer: cid, Ref: refOf(q1), Prefetch: 10}
		reply, err := ns[0].f.HandleRequest(ctx, 2, KindConsume, req.append(nil))
		if err != nil {
			t.Fatal(err)
		}
		if kind, _, err := decodeStatus(reply); err != nil || kind == 0 {
			t.Fatalf("op %d: a consume after its cancel was accepted (kind %d, %v)", op, kind, err)
		}
		if _, _, cons := q1.Counts(); cons != 0 {
			t.Fatalf("op %d: %d consumers on the owner after a cancelled consume", op, cons)
		}
	}
}

// A basic.get whose reply was lost (finding 4): the owner took the
// message and filed it under an id the client's node never learnt. The
// client's node must give it back, and tell its client the get failed
// rather than that the queue is empty (finding 7).
func TestGetReplyLostRequeues(t *testing.T) {
	tweak, _ := losingClient(KindGet, 1)
	ns := newCluster(t, 2, tweak)
	declare(t, ns[0], "q", nil)
	declare(t, ns[0], "other", nil)
	q1 := queueOf(t, ns[0], "q")
	var s broker.RouteScratch
	publish(t, ns[0], &s, "q", "m0", false, nil, 0)
	// Another consumer of the same owner keeps the session alive.
	keep := newConsumer(1, false)
	if err := queueOf(t, ns[1], "other").Consume(keep, broker.ConsumeOptions{Prefetch: 1}); err != nil {
		t.Fatal(err)
	}
	q2 := queueOf(t, ns[1], "q")
	if _, ok, err := q2.Fetch(false); ok || !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("get with its reply lost: ok %v, err %v", ok, err)
	}
	waitFor(t, 3*time.Second, "the message back in the queue", nil, func() bool {
		r, u, _ := q1.Counts()
		return r == 1 && u == 0
	})
	d, ok, err := q2.Fetch(false)
	if err != nil || !ok || string(d.Msg.Body) != "m0" {
		t.Fatalf("get again: %v %v", ok, err)
	}
	d.Queue.Ack(d)
	waitFor(t, 2*time.Second, "acked", nil, func() bool { r, u, _ := q1.Counts(); return r == 0 && u == 0 })
}

// A delivery lost on its way to a consumer that then cancels, before any
// keepalive found the loss: the cancelled proxy would hold it unacked for
// as long as the session lives (the cancelled consumer is in no
// keepalive). The cancel names the last id the consumer's node received,
// and the owner requeues what it pushed beyond it.
func TestCancelRequeuesDeliveriesLostBefore(t *testing.T) {
	tweak, _ := lossyOwner(map[int]bool{2: true}, nil)
	ns := newCluster(t, 2, func(c *Config) {
		tweak(c)
		c.KeepaliveInterval, c.LeaseTimeout = 10*time.Second, 30*time.Second
	})
	declare(t, ns[0], "q", nil)
	q1, q2 := queueOf(t, ns[0], "q"), queueOf(t, ns[1], "q")
	c := newConsumer(10, false)
	if err := q2.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	var s broker.RouteScratch
	publish(t, ns[0], &s, "q", "m1", false, nil, 0) // notify 1
	waitFor(t, 2*time.Second, "m1", c.ch, func() bool { g, _, _ := c.snapshot(); return len(g) == 1 })
	publish(t, ns[0], &s, "q", "m2", false, nil, 0) // notify 2: lost
	waitFor(t, 2*time.Second, "m2 pushed", nil, func() bool { _, u, _ := q1.Counts(); return u == 2 })
	q2.Cancel(c)
	q2.Ack(c.take()...)
	waitFor(t, 3*time.Second, "m2 back in the queue", nil, func() bool { r, u, _ := q1.Counts(); return r == 1 && u == 0 })
}
