package mqtt

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// signalPeers is a cluster with no other connection of any client id
// whose takeover reports the client ids it is asked for, once armed: a
// handshake that asked is past its kicked check.
type signalPeers struct {
	armed   atomic.Bool
	reached chan string
}

func (p *signalPeers) TakeOver(ctx context.Context, vhost, id string, clean bool) error {
	if p.armed.Load() {
		p.reached <- id
	}
	return nil
}
func (*signalPeers) NodeReachable(uint64) bool { return true }
func (*signalPeers) NodeName(uint64) string    { return "peer" }

// A connection kicked during its handshake, after the check that stops a
// handshake without CONNACK (a newer CONNECT's claim, a shutdown), gets
// CONNACK then one DISCONNECT and nothing after it [MQTT-3.14.4-1]: the
// resumed session's backlog stays in its queue for the connection that
// took it over (review11 F3). Before, the backlog was taken from the queue
// and written after the DISCONNECT: QoS 0 messages were lost to the new
// connection, QoS 1 ones sent and requeued.
func TestConnectKickedAfterItsKickedCheckGetsNothingAfterDisconnect(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprint("QoS", qos), func(t *testing.T) {
			peers := &signalPeers{reached: make(chan string, 1)}
			s := serveTest(t, newTestBroker(nil), "", Config{Cluster: peers})
			r, _ := connectRaw5(t, s.addr, "k", false, 600)
			r.send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "t/#", QoS: qos}}})
			if _, ok := r.expect().(*wire.Suback); !ok {
				t.Fatal("no SUBACK")
			}
			r.send(&wire.Disconnect{})
			r.waitClosed()
			pub, _ := connectRaw5(t, s.addr, "p", true, 0)
			for i := range 5 {
				pub.send(&wire.Publish{QoS: qos, PacketID: uint16(i + 1), Topic: "t/x", Payload: []byte(fmt.Sprint("m", i))})
			}
			q, _ := s.b.VHost("/").Queue(sessionQueue("k"), 0)
			waitFor(t, "the backlog", func() bool { n, _, _ := q.Counts(); return n == 5 })

			// The resuming handshake asks the (fake) other nodes, past its
			// kicked check, and then stops in expiry.connected.
			s.expiry.mu.Lock()
			peers.armed.Store(true)
			r2 := dialRaw(t, s.addr, wire.V5)
			c := &wire.Connect{ProtocolName: "MQTT", Level: wire.V5, KeepAlive: 60, ClientID: "k"}
			c.Props.SessionExpiry = 600
			c.Props.Set(wire.PropSessionExpiry)
			r2.send(c)
			if id := <-peers.reached; id != "k" {
				s.expiry.mu.Unlock()
				t.Fatalf("takeover asked for %q", id)
			}
			s.mu.Lock()
			nc := s.active["k"]
			s.mu.Unlock()
			nc.kick(wire.SessionTakenOver) // as a newer CONNECT's claim, or a shutdown
			s.expiry.mu.Unlock()

			var seq []string
			for _, p := range r2.waitClosed() {
				switch p := p.(type) {
				case *wire.Connack:
					seq = append(seq, fmt.Sprintf("CONNACK(0x%x)", p.ReasonCode))
				case *wire.Disconnect:
					seq = append(seq, fmt.Sprintf("DISCONNECT(0x%x)", p.ReasonCode))
				case *wire.Publish:
					seq = append(seq, "PUBLISH "+string(p.Payload))
				default:
					seq = append(seq, fmt.Sprintf("%T", p))
				}
			}
			if fmt.Sprint(seq) != "[CONNACK(0x0) DISCONNECT(0x8e)]" {
				t.Errorf("the kicked connection read %v, want [CONNACK(0x0) DISCONNECT(0x8e)]", seq)
			}
			waitFor(t, "the kicked connection's end", func() bool { return nc.state.Load() == stDone })
			if n, _, _ := q.Counts(); n != 5 {
				t.Errorf("the session queue holds %d of its 5 messages", n)
			}
		})
	}
}
