package broker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/broker/memstore"
	"github.com/tern-broker/tern/internal/message"
)

// slowForwarder is a Forwarder whose Counts waits, as the cluster's does
// for an owner that does not answer, until release is closed. It reports
// each Counts call on entered.
type slowForwarder struct {
	entered chan struct{}
	release chan struct{}
	ready   int
}

func (f *slowForwarder) Publish(*broker.Queue, *message.Message, message.Completion, uint64) (broker.PublishOutcome, bool) {
	return broker.Rejected, false
}
func (f *slowForwarder) Consume(*broker.Queue, broker.Consumer, broker.ConsumeOptions) error {
	return nil
}
func (f *slowForwarder) Cancel(*broker.Queue, broker.Consumer)                    {}
func (f *slowForwarder) Dispatch(*broker.Queue)                                   {}
func (f *slowForwarder) Settle(*broker.Queue, broker.SettleOp, []broker.Delivery) {}
func (f *slowForwarder) Get(*broker.Queue, bool) (broker.Delivery, bool, error) {
	return broker.Delivery{}, false, nil
}
func (f *slowForwarder) Purge(*broker.Queue) (int, error)       { return 0, nil }
func (f *slowForwarder) Closed(*broker.Queue) []broker.Consumer { return nil }
func (f *slowForwarder) Counts(*broker.Queue) (ready, unacked, consumers int) {
	select {
	case f.entered <- struct{}{}:
	default:
	}
	<-f.release
	return f.ready, 0, 0
}

// A delete of another node's queue must not wait on that node while it
// holds the vhost's lock: the metadata group's apply (and its snapshot)
// take that lock, and a stalled apply stalls the whole group. Finding 2:
// checkDeleteLocked asked the Forwarder for counts under v.mu, which
// waits up to RequestTimeout on the network, for every delete.
func TestMetaRemoteDeleteDoesNotWaitUnderVHostLock(t *testing.T) {
	for _, tc := range []struct {
		name              string
		ifUnused, ifEmpty bool
		ready             int // the owner's count
	}{{"plain", false, false, 0}, {"if-unused", true, false, 0}, {"if-empty", false, true, 0}, {"if-empty-not", false, true, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMeta{}
			n1 := newClusterNode(f, 1, nil)
			fwd := &slowForwarder{entered: make(chan struct{}, 1), release: make(chan struct{}), ready: tc.ready}
			b2 := broker.New(broker.Config{Storage: memstore.New(),
				Replication: broker.Replication{Node: 2, Metadata: fakeMember{f: f, node: 2}, Forward: fwd}})
			f.nodes = append(f.nodes, n1.b, b2)
			if _, err := n1.v.DeclareQueue(broker.QueueConfig{Name: "q", Durable: true}, false, 1); err != nil {
				t.Fatal(err)
			}
			v2 := b2.VHost("/")
			deleted := make(chan error, 1)
			go func() {
				_, err := v2.DeleteQueue("q", tc.ifUnused, tc.ifEmpty, 7)
				deleted <- err
			}()
			var releaseOnce sync.Once
			release := func() { releaseOnce.Do(func() { close(fwd.release) }) }
			defer release()
			select {
			case err := <-deleted:
				if err != nil {
					t.Fatal(err)
				}
				return // never asked the owner: nothing held
			case <-fwd.entered:
			case <-time.After(5 * time.Second):
				t.Fatal("the delete neither finished nor asked for counts")
			}
			// The delete waits on the owner: the vhost must stay free.
			snap := make(chan error, 1)
			go func() { _, err := b2.DefinitionsSnapshot(); snap <- err }()
			select {
			case err := <-snap:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(3 * time.Second):
				release()
				t.Fatal("the vhost's lock is held while the delete waits on the queue's node")
			}
			release()
			err := <-deleted
			if tc.ready > 0 {
				// if-empty is the owner's count, as RabbitMQ checks it on the queue's node.
				if !errors.Is(err, broker.ErrPreconditionFailed) {
					t.Fatalf("if-empty delete of a queue its node counts %d in: %v", tc.ready, err)
				}
				if q, _ := n1.v.Queue("q", 0); q == nil {
					t.Fatal("q deleted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q, _ := n1.v.Queue("q", 0); q != nil {
				t.Fatal("q not deleted")
			}
		})
	}
}
