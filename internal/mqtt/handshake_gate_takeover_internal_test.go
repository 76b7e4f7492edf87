package mqtt

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// heldPeers is a cluster whose takeover of "slow-*" client ids waits until
// released: a peer whose old connection closes slowly (a stalled disk
// there), or one gone silent and not yet noticed.
type heldPeers struct {
	release chan struct{}
	waiting atomic.Int32
}

func (p *heldPeers) TakeOver(ctx context.Context, vhost, id string, clean bool) error {
	if strings.HasPrefix(id, "slow-") {
		p.waiting.Add(1)
		<-p.release
	}
	return nil
}
func (*heldPeers) NodeReachable(uint64) bool { return true }
func (*heldPeers) NodeName(uint64) string    { return "peer" }

// More handshakes waiting on slow takeovers than the gate has places do not
// stall an unrelated client's CONNECT: each gives its place up after the
// grace (review11 F1). Before, the 128 held every place until their
// takeovers ended (up to 3 s in a cluster, 5 s locally) and every other
// CONNECT waited in the FIFO behind them.
func TestHandshakesWaitingOnATakeoverLeaveTheGate(t *testing.T) {
	peers := &heldPeers{release: make(chan struct{})}
	s := serveTest(t, newTestBroker(nil), "", Config{Cluster: peers})
	t.Cleanup(func() { close(peers.release) }) // before the server stops
	const slow = maxHandshakes + 8
	for i := range slow {
		r := dialRaw(t, s.addr, wire.V311)
		r.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: fmt.Sprint("slow-", i)})
	}
	// Every slow CONNECT reaches its takeover: those past the first 128
	// only once places were given up.
	waitFor(t, "every slow CONNECT waiting on its takeover", func() bool { return peers.waiting.Load() == slow })
	r := dialRaw(t, s.addr, wire.V311)
	_ = r.nc.SetDeadline(time.Now().Add(5 * time.Second))
	r.send(&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 60, ClientID: "fast"})
	if ack, ok := r.expect().(*wire.Connack); !ok || ack.ReasonCode != 0 {
		t.Fatalf("fast: %+v", ack)
	}
}
