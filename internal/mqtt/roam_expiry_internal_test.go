package mqtt

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/clock"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// A 5.0 session that roams to another node of a cluster is not deleted by
// the countdown this node armed when the client left it: the other node's
// CONNECT takes the client id over here (TakenOver, as the cluster calls
// it), and that node keeps the session's clock from then on. (Before,
// this node deleted the session queue `expiry` seconds after the client
// left, under its live connection on the other node.)
func TestRoamedSessionOutlivesThisNodesCountdown(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := serveTest(t, newTestBroker(clk), "", Config{})
	r, _ := connectRaw5(t, s.addr, "roam", true, 60)
	r.send(&wire.Disconnect{})
	r.waitClosed()
	if clk.Pending() == 0 {
		t.Fatal("no countdown armed for the session")
	}
	s.TakenOver("/", "roam", false) // the client resumed the session on another node
	clk.Advance(61 * time.Second)
	if !s.hasSession("roam") {
		t.Fatal("the session was deleted by this node's countdown after it resumed on another node")
	}
}

// The same for a client connected here when another node's CONNECT took
// it over: its teardown records no countdown, and the entry that marked
// it connected goes too (from the file as well), so a restart does not
// arm a countdown from the restart time that ends the session wherever
// the client is connected then.
func TestTakenOverSessionIsNotExpiredAfterARestart(t *testing.T) {
	clk := clock.NewFake(time.Now())
	b := newTestBroker(clk)
	dir := t.TempDir()
	s := serveTest(t, b, dir, Config{})
	r, _ := connectRaw5(t, s.addr, "roam2", true, 60)
	if done := s.TakenOver("/", "roam2", false); done != nil {
		<-done
	}
	if d, ok := r.expect().(*wire.Disconnect); !ok || d.ReasonCode != wire.SessionTakenOver {
		t.Fatalf("want DISCONNECT 0x8E, got %+v", d)
	}
	r.waitClosed()
	file := filepath.Join(dir, "mqtt-sessions.bin")
	waitFor(t, "the session's expiry entry to leave the file", func() bool {
		raw, err := os.ReadFile(file)
		return err == nil && !bytes.Contains(raw, []byte("roam2"))
	})
	// A restart of this node's MQTT server on the same data (the broker,
	// and so the queue, stays).
	s2 := serveTest(t, b, dir, Config{})
	clk.Advance(61 * time.Second)
	if !s2.hasSession("roam2") {
		t.Fatal("the session was deleted by a countdown armed at the restart")
	}
}

// A session queue that has a consumer when the countdown ends is not
// deleted: someone uses the session (in a cluster, its client on another
// node that this node did not hear take it over). The countdown is
// dropped; the node where the session is used keeps its clock.
func TestExpiryKeepsASessionQueueWithAConsumer(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := serveTest(t, newTestBroker(clk), "", Config{})
	r, _ := connectRaw5(t, s.addr, "used", true, 60)
	r.send(&wire.Disconnect{})
	r.waitClosed()
	q, err := s.b.VHost("/").Queue(sessionQueue("used"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Consume(refusingConsumer{}, broker.ConsumeOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	if !s.hasSession("used") {
		t.Fatal("the countdown deleted a session queue that has a consumer")
	}
	s.expiry.mu.Lock()
	_, kept := s.expiry.entries["used"]
	s.expiry.mu.Unlock()
	if kept {
		t.Fatal("the countdown's entry stayed")
	}
}

type refusingConsumer struct{}

func (refusingConsumer) TryDeliver(broker.Delivery) broker.Verdict { return broker.Refuse }
func (refusingConsumer) Cancelled(*broker.Queue)                   {}
