package mqtt_test

import (
	"bufio"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A client that keeps exactly the server's Receive Maximum of QoS 2
// publishes in flight, answering every PUBREC at once, is within the limit
// the whole time and must never get DISCONNECT 0x93 [MQTT-3.3.4-7]. A QoS 2
// message counts once, from PUBLISH until PUBREL.
func TestMQTT5QoS2StreamAtReceiveMaximum(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	r := testkit.DialMQTT(t, s)
	r.V = wire.V5
	_ = r.NC.SetDeadline(time.Now().Add(60 * time.Second))
	r.Send(&wire.Connect{ProtocolName: "MQTT", Level: 5, CleanStart: true, KeepAlive: 60, ClientID: "steady"})
	ack, ok := r.Expect().(*wire.Connack)
	if !ok || ack.ReasonCode != 0 || !ack.Props.Has(wire.PropReceiveMaximum) {
		t.Fatalf("CONNACK %+v", ack)
	}
	window := int(ack.Props.ReceiveMaximum)
	const total = 5000

	var wmu sync.Mutex
	w := bufio.NewWriter(r.NC)
	write := func(p wire.Packet, flush bool) error {
		wmu.Lock()
		defer wmu.Unlock()
		if _, err := w.Write(p.Append(nil, wire.V5)); err != nil {
			return err
		}
		if flush {
			return w.Flush()
		}
		return nil
	}
	slots := make(chan struct{}, window)
	for range window {
		slots <- struct{}{}
	}
	failed := make(chan string, 1)
	completed := make(chan struct{})
	go func() {
		defer close(completed)
		for n := 0; n < total; {
			p, err := r.R.ReadPacket(wire.V5)
			if err != nil {
				failed <- err.Error()
				return
			}
			switch p := p.(type) {
			case *wire.Ack:
				switch p.Kind {
				case wire.PUBREC:
					if err := write(&wire.Ack{Kind: wire.PUBREL, PacketID: p.PacketID}, true); err != nil {
						failed <- err.Error()
						return
					}
				case wire.PUBCOMP:
					n++
					slots <- struct{}{}
				}
			case *wire.Disconnect:
				failed <- fmt.Sprintf("DISCONNECT 0x%02x after %d messages", p.ReasonCode, n)
				return
			}
		}
	}()
	pid := uint16(0)
	for i := 0; i < total; i++ {
		select {
		case <-slots:
		case msg := <-failed:
			t.Fatal(msg)
		case <-time.After(30 * time.Second):
			t.Fatalf("stalled after %d publishes", i)
		}
		pid = pid%uint16(window*2) + 1 // ids in flight never collide: at most window are
		if err := write(&wire.Publish{QoS: 2, PacketID: pid, Topic: "steady/stream", Payload: []byte("x")}, len(slots) == 0 || i == total-1); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-completed:
	case msg := <-failed:
		t.Fatal(msg)
	case <-time.After(30 * time.Second):
		t.Fatal("not every QoS 2 publish completed")
	}
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}
}
