package forward

import (
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
)

// A single-active-consumer classic queue held by node 1, consumed from
// node 2: the status of each forwarded consumer (/api/consumers) is its
// proxy's on node 1, where the queue chooses — the first is active, the
// second waiting — not "up" for both; after the first cancels, the second
// is active. A consumer of a queue without the argument is up.
func TestForwardedConsumerStatus(t *testing.T) {
	ns := newCluster(t, 2, nil)
	declare(t, ns[0], "sac", map[string]any{"x-single-active-consumer": true})
	declare(t, ns[0], "plain", nil)
	q := queueOf(t, ns[1], "sac")
	first, second := newConsumer(10, false), newConsumer(10, false)
	for _, c := range []*consumer{first, second} {
		if err := q.Consume(c, broker.ConsumeOptions{Prefetch: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if s1, s2 := q.ConsumerStatus(first), q.ConsumerStatus(second); s1 != broker.ConsumerSingleActive || s2 != broker.ConsumerWaiting {
		t.Fatalf("statuses: first %v, second %v", s1, s2)
	}
	q.Cancel(first)
	owned := queueOf(t, ns[0], "sac")
	waitFor(t, 10*time.Second, "the cancel on the owner", nil, func() bool {
		_, _, consumers := owned.Counts()
		return consumers == 1
	})
	if s2 := q.ConsumerStatus(second); s2 != broker.ConsumerSingleActive {
		t.Fatalf("status after the active one cancelled: %v", s2)
	}
	p := queueOf(t, ns[1], "plain")
	other := newConsumer(10, false)
	if err := p.Consume(other, broker.ConsumeOptions{Prefetch: 10}); err != nil {
		t.Fatal(err)
	}
	if s := p.ConsumerStatus(other); s != broker.ConsumerUp {
		t.Fatalf("a plain queue's consumer: %v", s)
	}
}
