package broker

import (
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// A quorum queue counts its message_stats as a classic queue does:
// publishes, deliveries to consumers and basic.get, redeliveries and acks.
func TestQuorumQueueMessageStats(t *testing.T) {
	t.Parallel()
	c := newQCluster(t, 1)
	qs := c.declare("q", nil)
	q := qs[0]
	for _, body := range []string{"a", "b", "c", "d"} {
		c.publish(1, "q", body, message.Properties{}, nil, 0)
	}
	c.settle()
	if got := q.MessageStats(); got != (MessageStats{Published: 4}) {
		t.Fatalf("after 4 publishes: %+v", got)
	}
	cons := &qtaker{}
	if err := q.Consume(cons, ConsumeOptions{Prefetch: 3}); err != nil {
		t.Fatal(err)
	}
	c.settle()
	ds := cons.deliveries()
	if len(ds) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ds))
	}
	q.Ack(ds[:2]...)
	q.Requeue(ds[2:]) // back, and delivered again marked redelivered
	c.settle()
	if n := len(cons.deliveries()); n < 4 {
		t.Fatalf("%d deliveries after the requeue, want at least 4", n)
	}
	q.Cancel(cons)
	c.settle()
	// Whatever the consumer still held is back: get it.
	gets := 0
	for range 4 {
		d, ok := q.Get(false)
		if !ok {
			break
		}
		gets++
		q.Ack(d)
		c.settle()
	}
	st := q.MessageStats()
	if st.Published != 4 || st.Redelivered < 1 || st.Acked != 2+uint64(gets) || st.Delivered != uint64(len(cons.deliveries())+gets) {
		t.Fatalf("message stats %+v (consumer got %d, gets %d)", st, len(cons.deliveries()), gets)
	}
	if _, _, _, _, st2 := q.Status(); st2 != st {
		t.Fatalf("Status %+v, MessageStats %+v", st2, st)
	}
}
