//go:build linux

package mqtt

import (
	"fmt"
	"sync/atomic"
	"testing"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Publishers whose packets come closer together than a gathering window
// make the event loop close its gate and serve them a window at a time
// (gather_linux.go); once they stop it opens the gate again, and a lone
// publish afterwards is served (its PUBACK comes, within the client's
// 10 s deadline) and delivered. Every publish of the busy stretch is
// delivered too.
func TestEventLoopGathersBusyEventsAndOpensAgain(t *testing.T) {
	s := serveTest(t, newTestBroker(nil), "", Config{})
	sub, _ := connectRaw5(t, s.addr, "gather-sub", true, 0)
	sub.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "g/#", QoS: 0}}})
	if _, ok := sub.expect().(*wire.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	s.mu.Lock()
	p := s.loop.poller
	s.mu.Unlock()
	const pubs = 8
	var clients []*rawClient
	for i := range pubs {
		c, _ := connectRaw5(t, s.addr, fmt.Sprint("gather-pub-", i), true, 0)
		clients = append(clients, c)
	}
	var got atomic.Int64 // the subscriber's PUBLISHes
	go func() {
		for {
			pk, err := sub.next()
			if err != nil {
				return // the test's end closes the connection
			}
			if _, ok := pk.(*wire.Publish); ok {
				got.Add(1)
			}
		}
	}()
	want := int64(0)
	// One publish per publisher, back to back, round after round, until
	// the loop has gathered (bounded in rounds).
	for round := 0; p.gathers.Load() == 0 && round < 5000; round++ {
		for i, c := range clients {
			c.send(&wire.Publish{Topic: fmt.Sprint("g/", i), Payload: []byte("x")})
			want++
		}
	}
	if p.gathers.Load() == 0 {
		if !raceEnabled {
			t.Fatal("the event loop never gathered")
		}
		// Under the race detector serving one wake-up's publishes takes
		// longer than a gathering window, so wake-ups never come a window
		// apart and the loop rightly does not gather (CI's race step):
		// what follows still checks that every publish is served.
		t.Log("the event loop never gathered under the race detector")
	}
	waitFor(t, "the loop to stop gathering", func() bool { return !p.gathering.Load() })
	clients[0].send(&wire.Publish{QoS: 1, PacketID: 1, Topic: "g/late", Payload: []byte("y")})
	if a, ok := clients[0].expect().(*wire.Ack); !ok || a.Kind != wire.PUBACK || a.PacketID != 1 {
		t.Fatalf("want PUBACK 1 after the loop gathered, got %+v", a)
	}
	want++
	waitFor(t, fmt.Sprint("the subscriber to get all ", want, " publishes"), func() bool { return got.Load() == want })
}
