package mqtt_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// Subscribing must not lose publications: a message the broker routed to
// the session (the mandatory publish was not returned) reaches the client,
// even while the subscription is being recorded; and replacing a
// subscription with new options loses nothing in between [MQTT-3.8.4-3].
func TestMQTT5SubscribingLosesNoMessages(t *testing.T) {
	t.Parallel()
	// A data dir and a durable session: a binding change is fsynced, which
	// widens any window in which it is half done.
	s := testkit.Start(t, testkit.WithDataDir(t.TempDir()))
	r, _ := connect5(t, s, "resub", withExpiry(3600))
	var wmu sync.Mutex
	send := func(p wire.Packet) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = r.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.NC.Write(p.Append(nil, wire.V5)); err != nil {
			t.Error(err)
		}
	}
	_ = r.NC.SetReadDeadline(time.Now().Add(60 * time.Second))

	var mu sync.Mutex
	received := map[int]bool{}
	subacks := make(chan struct{}, 100)
	go func() {
		for {
			p, err := r.R.ReadPacket(wire.V5)
			if err != nil {
				return
			}
			switch p := p.(type) {
			case *wire.Suback:
				subacks <- struct{}{}
			case *wire.Publish:
				if p.QoS == 1 {
					send(&wire.Ack{Kind: wire.PUBACK, PacketID: p.PacketID})
				}
				n, _ := strconv.Atoi(string(p.Payload))
				mu.Lock()
				received[n] = true
				mu.Unlock()
			}
		}
	}()

	_, ch := s.Channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1000))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1000))
	var confirmed atomic.Int64
	var rmu sync.Mutex
	returnedSeqs := []int{}
	go func() {
		for range confirms {
			confirmed.Add(1)
		}
	}()
	go func() {
		for ret := range returns {
			n, _ := strconv.Atoi(string(ret.Body))
			rmu.Lock()
			returnedSeqs = append(returnedSeqs, n)
			rmu.Unlock()
		}
	}()
	// started is the number of the publish being written: one that starts
	// after a SUBACK arrived is routed after the subscription was made.
	var published, started atomic.Int64
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := 1; i <= 300_000; i++ { // until stopped; bounded all the same
			select {
			case <-stop:
				return
			default:
			}
			started.Store(int64(i))
			if err := ch.Publish("amq.topic", "feed.x", true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(strconv.Itoa(i))}); err != nil {
				return
			}
			published.Store(int64(i))
		}
	}()
	subscribe := func(qos byte) {
		send(&wire.Subscribe{PacketID: 1, Subs: []wire.Subscription{{Filter: "feed/x", QoS: qos}}})
		select {
		case <-subacks:
		case <-time.After(10 * time.Second):
			t.Fatal("no SUBACK")
		}
	}
	testkit.Eventually(t, wait, "publishing", func() bool { return published.Load() > 100 })
	subscribe(1)
	subscribedAt := int(started.Load())
	for i := range 40 {
		subscribe(byte(i % 2)) // new options each time: the subscription is replaced
	}
	close(stop)
	<-pubDone
	total := int(published.Load())
	testkit.Eventually(t, 30*time.Second, "every publish confirmed", func() bool { return confirmed.Load() == int64(total) })
	// A return comes before its confirm, but is counted on another
	// goroutine: read them afresh on every look.
	returned := func() map[int]bool {
		rmu.Lock()
		defer rmu.Unlock()
		out := make(map[int]bool, len(returnedSeqs))
		for _, n := range returnedSeqs {
			out[n] = true
		}
		return out
	}
	missing := func() []int {
		ret := returned()
		mu.Lock()
		defer mu.Unlock()
		var out []int
		for i := 1; i <= total; i++ {
			if !ret[i] && !received[i] {
				out = append(out, i)
			}
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d messages routed to the session never reached the client, first %d", len(m), m[0])
	}
	late := 0
	ret := returned()
	for n := range ret {
		if n > subscribedAt {
			late++
		}
	}
	if late > 0 {
		t.Fatalf("%d messages were unroutable after the first SUBACK: replacing the subscription unbound the session", late)
	}
	t.Logf("%d published, %d returned before the subscription, %d after the first SUBACK", total, len(ret), total-subscribedAt)
}
