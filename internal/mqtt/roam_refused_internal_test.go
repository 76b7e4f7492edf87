package mqtt

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/clock"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// pendingPeers is a cluster whose takeover fails, once armed, as it does
// when another node's connection of the client id is still closing
// (cluster.ErrTakeoverPending): the nodes that answered have dropped
// their countdowns (TakenOver) all the same.
type pendingPeers struct{ armed atomic.Bool }

func (p *pendingPeers) TakeOver(ctx context.Context, vhost, id string, clean bool) error {
	if p.armed.Load() {
		return errors.New("a node's connection of the client id is still closing")
	}
	return nil
}
func (*pendingPeers) NodeReachable(uint64) bool { return true }
func (*pendingPeers) NodeName(uint64) string    { return "peer" }

// A resuming CONNECT refused after it asked the other nodes to give the
// client id up (which drops their expiry countdowns) leaves a countdown
// here, with its interval: the session, not resumed, still expires
// (review11 F2). Before, no node had one, and the session queue collected
// its subscriptions' messages for good.
func TestRefusedResumeLeavesACountdown(t *testing.T) {
	clk := clock.NewFake(time.Now())
	peers := &pendingPeers{}
	s := serveTest(t, newTestBroker(clk), t.TempDir(), Config{Cluster: peers})
	r, _ := connectRaw5(t, s.addr, "roamer", false, 3600)
	r.send(&wire.Disconnect{})
	r.waitClosed()
	// The client then connected to another node (whose CONNECT dropped
	// this node's countdown) and left it: that node's countdown runs.
	if ch := s.TakenOver("/", "roamer", false); ch != nil {
		t.Fatal("TakenOver found a connection to wait for")
	}

	// It comes back here; another node's old connection of it is still
	// closing: the CONNECT is refused, after the other nodes (the one
	// with the countdown among them) were asked.
	peers.armed.Store(true)
	r2 := dialRaw(t, s.addr, wire.V5)
	c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: "roamer"}
	c.Props.SessionExpiry = 60
	c.Props.Set(wire.PropSessionExpiry)
	r2.send(c)
	if ack, ok := r2.expect().(*wire.Connack); !ok || ack.ReasonCode != wire.ServerUnavailable {
		t.Fatalf("want CONNACK 0x88, got %+v", ack)
	}
	r2.waitClosed()
	clk.Advance(59 * time.Second)
	if !s.hasSession("roamer") {
		t.Fatal("the session ended before the refused CONNECT's interval passed")
	}
	clk.Advance(2 * time.Second)
	waitFor(t, "the session's expiry", func() bool { return !s.hasSession("roamer") })
}
