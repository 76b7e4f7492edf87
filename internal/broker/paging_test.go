package broker_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/message"
	"github.com/tern-broker/tern/internal/store"
	"github.com/tern-broker/tern/internal/testkit"
	"github.com/tern-broker/tern/internal/vfs"
)

// durableWaiter is a Completion that counts durable messages.
type durableWaiter struct {
	mu   sync.Mutex
	n    int
	errs []error
	ch   chan struct{} // receives once per durable message
}

func (w *durableWaiter) Durable(_ uint64, err error) {
	w.mu.Lock()
	w.n++
	if err != nil {
		w.errs = append(w.errs, err)
	}
	w.mu.Unlock()
	w.ch <- struct{}{}
}

// takeAll is a Consumer that takes every message offered.
type takeAll struct {
	mu  sync.Mutex
	got []string
}

func (c *takeAll) TryDeliver(d broker.Delivery) broker.Verdict {
	c.mu.Lock()
	c.got = append(c.got, string(d.Msg.Body))
	c.mu.Unlock()
	return broker.TakeSettled
}

func (c *takeAll) Cancelled(*broker.Queue) {}

func (c *takeAll) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

// blockingReads is a file system whose reads, once armed, announce
// themselves on reading and wait for release.
type blockingReads struct {
	armed   atomic.Bool
	reading chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlockingReads(t *testing.T) (*blockingReads, vfs.FS) {
	b := &blockingReads{reading: make(chan struct{}, 1), release: make(chan struct{})}
	fs := &blockingFS{b: b}
	fs.FS = vfs.NewFaulty(vfs.NewMem(), func(op vfs.Op, _ string, _ int) (int, error) {
		if op == vfs.OpRead && b.armed.Load() {
			select {
			case b.reading <- struct{}{}:
			default:
			}
			<-b.release
		}
		return 0, nil
	})
	return b, fs
}

// blockingFS lets pagedOutQueue release blocked reads when the test ends.
type blockingFS struct {
	vfs.FS
	b *blockingReads
}

func (f *blockingFS) open() { f.b.open() }

func (b *blockingReads) open() { b.once.Do(func() { close(b.release) }) }

// logsOnly is a store as the broker's Storage for tests of queue logs: the
// definitions are kept nowhere (internal/server's adapter encodes them).
type logsOnly struct{ st *store.Store }

func (s logsOnly) QueueLog(id string) (broker.Log, error) { return s.st.QueueLog(id) }
func (s logsOnly) StreamLog(id string, segmentSize int64) (broker.StreamLog, error) {
	return s.st.StreamLog(id, segmentSize)
}
func (s logsOnly) DeleteQueueLog(id string) error             { return s.st.DeleteQueueLog(id) }
func (logsOnly) SaveDefinitions(*broker.Definitions) error    { return nil }
func (logsOnly) AppendCommand(broker.Command) (uint64, error) { return 0, nil }
func (logsOnly) SyncCommands(uint64) error                    { return nil }
func (logsOnly) SnapshotDue() bool                            { return false }

// pagedOutQueue returns a durable queue holding n persistent messages
// m0…m(n-1) whose bodies are all paged out to its log.
func pagedOutQueue(t *testing.T, fs vfs.FS, n int) (*broker.VHost, *broker.Queue, *durableWaiter) {
	t.Helper()
	return pagedOutQueueArgs(t, fs, n, nil)
}

func pagedOutQueueArgs(t *testing.T, fs vfs.FS, n int, args map[string]any) (*broker.VHost, *broker.Queue, *durableWaiter) {
	t.Helper()
	st, err := store.Open(fs, "/data", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if r, ok := fs.(interface{ open() }); ok {
		t.Cleanup(r.open) // runs first: never leave a reader blocked
	}
	// A limit of one byte keeps no body of a ready message in memory.
	b := broker.New(broker.Config{Storage: logsOnly{st}, QueueMemoryLimit: 1})
	v := b.VHost("/")
	if args != nil {
		// A dead-letter target, declared before any message can expire.
		if _, err := v.DeclareQueue(broker.QueueConfig{Name: "dead", Durable: true}, false, 1); err != nil {
			t.Fatal(err)
		}
	}
	q, err := v.DeclareQueue(broker.QueueConfig{Name: "q", Durable: true, Args: args}, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	w := &durableWaiter{ch: make(chan struct{}, 100)}
	for i := range n {
		publish(t, v, fmt.Sprintf("m%d", i), w)
	}
	for range n {
		waitEvent(t, w.ch, "a message to become durable")
	}
	return v, q, w
}

func publish(t *testing.T, v *broker.VHost, body string, w *durableWaiter) {
	t.Helper()
	if err := tryPublish(v, body, w); err != nil {
		t.Fatal(err)
	}
}

func tryPublish(v *broker.VHost, body string, w *durableWaiter) error {
	var s broker.RouteScratch
	m := &message.Message{RoutingKey: "q", Body: []byte(body), Props: message.Properties{DeliveryMode: 2}}
	res, err := v.Publish(&s, m, w, 0)
	if err != nil || res.Routed != 1 || res.Rejected {
		return fmt.Errorf("publish %s: %+v %v", body, res, err)
	}
	return nil
}

// waitEvent fails the test unless ch delivers within 10s. The wait only
// bounds a failure: a passing run returns on the event.
func waitEvent(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A consumer paging bodies in from disk must not hold the queue (or its
// log) while it reads: a publisher to the same queue gets its message
// stored and confirmed while the read is still blocked.
func TestPublishIsNotStalledWhileAConsumerPagesIn(t *testing.T) {
	t.Parallel()
	reads, fs := newBlockingReads(t)
	v, q, w := pagedOutQueue(t, fs, 3)
	reads.armed.Store(true)

	c := &takeAll{}
	consumed := make(chan error, 1)
	go func() { consumed <- q.Consume(c, broker.ConsumeOptions{NoAck: true}) }()
	waitEvent(t, reads.reading, "the consumer to start reading a body")

	published := make(chan struct{})
	go func() {
		if err := tryPublish(v, "m3", w); err != nil {
			t.Error(err)
		}
		close(published)
	}()
	waitEvent(t, published, "a publish while a body is being read")
	waitEvent(t, w.ch, "the publish to become durable while a body is being read")

	reads.open()
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "all four messages in order", func() bool {
		return fmt.Sprint(c.bodies()) == "[m0 m1 m2 m3]"
	})
}

// basic.get reads a paged-out body without the queue's lock too.
func TestPublishIsNotStalledWhileAGetPagesIn(t *testing.T) {
	t.Parallel()
	reads, fs := newBlockingReads(t)
	v, q, w := pagedOutQueue(t, fs, 2)
	reads.armed.Store(true)

	type got struct {
		d  broker.Delivery
		ok bool
	}
	gets := make(chan got, 1)
	go func() {
		d, ok := q.Get(true)
		gets <- got{d, ok}
	}()
	waitEvent(t, reads.reading, "the get to start reading a body")

	published := make(chan struct{})
	go func() {
		if err := tryPublish(v, "m2", w); err != nil {
			t.Error(err)
		}
		close(published)
	}()
	waitEvent(t, published, "a publish while a body is being read")

	reads.open()
	g := <-gets
	if !g.ok || string(g.d.Msg.Body) != "m0" {
		t.Fatalf("get: %v %+v", g.ok, g.d.Msg)
	}
	if ready, _, _ := q.Counts(); ready != 2 {
		t.Fatalf("ready after one get: %d, want 2", ready)
	}
}

// A paged-out message that expires is read back after the queue's lock is
// released and dead-lettered with its body.
func TestPagedOutMessagesAreDeadLetteredWithTheirBodies(t *testing.T) {
	t.Parallel()
	reads, fs := newBlockingReads(t)
	v, q, _ := pagedOutQueueArgs(t, fs, 3, map[string]any{
		"x-message-ttl": int64(50), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead",
	})
	reads.open()
	dead, err := v.Queue("dead", 1)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the three messages to expire", func() bool {
		ready, _, _ := q.Counts()
		n, _, _ := dead.Counts()
		return ready == 0 && n == 3
	})
	var got []string
	for range 3 {
		d, ok := dead.Get(true)
		if !ok {
			t.Fatal("dead-letter queue empty")
		}
		got = append(got, string(d.Msg.Body))
	}
	if fmt.Sprint(got) != "[m0 m1 m2]" {
		t.Fatalf("dead-lettered bodies: %v", got)
	}
}
