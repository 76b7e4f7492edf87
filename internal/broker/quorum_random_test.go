package broker

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tern-broker/tern/internal/message"
)

// Random operations on three nodes — publishes, consumers coming and
// going, acks, requeues, gets, nodes lost and back, leader changes, time
// passing — then every node healed: the replicas must agree, the machine's
// invariants hold, and no confirmed message may be lost (each is either
// still in the queue or was acked by a consumer).
func TestQuorumBackendRandomOperations(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runQuorumRandom(t, seed)
		})
	}
}

type rconsumer struct {
	node  int
	c     *qtaker
	taken int // deliveries of c already moved to held
	live  bool
	noAck bool
}

func runQuorumRandom(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	c := newQCluster(t, 3)
	qs := c.declare("q", map[string]any{"x-delivery-limit": int32(-1)})
	conf := &qconfirms{}
	var held []Delivery // taken by some consumer, not settled by the test
	var consumers []*rconsumer
	acked := map[string]bool{}
	published := 0
	live := []bool{true, true, true}
	leader := 0
	collect := func() {
		for _, rc := range consumers {
			ds := rc.c.deliveries()
			for _, d := range ds[rc.taken:] {
				if rc.noAck {
					acked[string(d.Msg.Body)] = true
				} else {
					held = append(held, d)
				}
			}
			rc.taken = len(ds)
		}
	}
	pickHeld := func() (Delivery, bool) {
		if len(held) == 0 {
			return Delivery{}, false
		}
		i := rng.IntN(len(held))
		d := held[i]
		held = append(held[:i], held[i+1:]...)
		return d, true
	}
	liveNode := func() int {
		for range 100 {
			if n := rng.IntN(3); live[n] {
				return n
			}
		}
		return leader // always live
	}
	for step := range 300 {
		collect()
		switch op := rng.IntN(13); op {
		case 0, 1, 2:
			n := liveNode()
			c.publish(n+1, "q", fmt.Sprint("m", published), message.Properties{}, conf, uint64(published))
			published++
		case 3:
			n := liveNode()
			rc := &rconsumer{node: n, c: &qtaker{}, live: true, noAck: rng.IntN(4) == 0}
			if err := qs[n].Consume(rc.c, ConsumeOptions{Prefetch: rng.IntN(4), NoAck: rc.noAck}); err == nil {
				consumers = append(consumers, rc)
			}
		case 4:
			if len(consumers) > 0 {
				rc := consumers[rng.IntN(len(consumers))]
				if rc.live {
					qs[rc.node].Cancel(rc.c)
					rc.live = false
				}
			}
		case 5, 6:
			if d, ok := pickHeld(); ok {
				acked[string(d.Msg.Body)] = true
				d.Queue.Ack(d)
			}
		case 7:
			if d, ok := pickHeld(); ok {
				d.Queue.Requeue([]Delivery{d})
			}
		case 8:
			n := liveNode()
			noAck := rng.IntN(2) == 0
			if d, ok := qs[n].Get(noAck); ok {
				if noAck {
					acked[string(d.Msg.Body)] = true
				} else {
					held = append(held, d)
				}
			}
		case 9:
			// A node other than the leader goes or comes back.
			if n := rng.IntN(3); n != leader {
				live[n] = !live[n]
				c.f.setLive(uint64(n+1), live[n])
			}
		case 12:
			leader = liveNode()
			c.f.setLeader(uint64(leader + 1))
		case 10:
			c.clk.Advance(quorumLiveCheck)
		case 11:
			for _, rc := range consumers {
				if rc.live && rng.IntN(2) == 0 {
					qs[rc.node].Dispatch()
				}
			}
		}
		if step%10 == 0 {
			c.settle()
		}
	}
	for n := range live {
		if !live[n] {
			c.f.setLive(uint64(n+1), true)
		}
	}
	c.settle()
	c.clk.Advance(quorumLiveCheck)
	c.settle()
	collect()
	c.sameState(qs)
	b := qs[0].backend.(*quorumBackend)
	b.mu.Lock()
	checkInvariants(t, b.m)
	inQueue := map[string]bool{}
	b.m.msgs.each(func(q *qmsg) { inQueue[string(recBody(q.rec))] = true })
	b.mu.Unlock()
	confirmed := 0
	for i := range published {
		err, ok := conf.result(uint64(i))
		if !ok {
			t.Fatalf("publish %d never answered", i)
		}
		if err != nil {
			continue
		}
		confirmed++
		body := fmt.Sprint("m", i)
		if !inQueue[body] && !acked[body] {
			t.Fatalf("confirmed message %s is lost", body)
		}
	}
	if confirmed == 0 {
		t.Fatal("nothing was confirmed")
	}
}
