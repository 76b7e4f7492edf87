package mqtt_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// TestKeepAliveWhileTrickling: a connected client trickling a large
// PUBLISH a byte every 150 ms (often enough to keep it lingering, never
// parked) is closed at 1.5 × its keep-alive after its last whole packet
// (finding 6: the deadline was only armed when parking).
func TestKeepAliveWhileTrickling(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	nc, err := net.Dial("tcp", mqttAddr(s))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write((&wire.Connect{ProtocolName: "MQTT", Level: wire.V311, CleanStart: true, KeepAlive: 1, ClientID: "trickler"}).Append(nil, wire.V311)); err != nil {
		t.Fatal(err)
	}
	var ack [4]byte
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(ack[:]); err != nil || ack[0] != 0x20 {
		t.Fatalf("CONNACK: % x %v", ack, err)
	}
	start := time.Now()
	pkt := (&wire.Publish{Topic: "t/" + strings.Repeat("x", 300), Payload: []byte("p")}).Append(nil, wire.V311)
	closed := make(chan time.Duration, 1)
	go func() {
		var b [64]byte
		_ = nc.SetReadDeadline(start.Add(20 * time.Second))
		_, _ = nc.Read(b[:])
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(pkt)-1; i++ {
		select {
		case took := <-closed:
			if took < time.Second || took > 6*time.Second {
				t.Fatalf("closed after %v, want about 1.5 s", took)
			}
			return
		case <-tick.C:
		}
		if _, err := nc.Write(pkt[i : i+1]); err != nil {
			return // closed meanwhile; the reader reports when
		}
		if time.Since(start) > 8*time.Second {
			t.Fatalf("still open %v after the last whole packet with keep-alive 1 s", time.Since(start))
		}
	}
	t.Fatal("the whole PUBLISH went in without a close")
}
