package mgmt_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// Exchanges and channels carry RabbitMQ's message_stats: an exchange's
// publish_in (messages published to it) and publish_out (copies routed
// to queues); a channel's publish, confirm, return_unroutable, deliver,
// get, deliver_get, ack and redeliver.
func TestExchangeAndChannelMessageStats(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/exchanges/%2F/fx", map[string]any{"type": "fanout"}, http.StatusCreated)
	for _, q := range []string{"q1", "q2"} {
		guest(t, s, "PUT", "/api/queues/%2F/"+q, map[string]any{"durable": false}, http.StatusCreated)
		guest(t, s, "POST", "/api/bindings/%2F/e/fx/q/"+q, map[string]any{"routing_key": ""}, http.StatusCreated)
	}
	_, ch := s.Channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, "fx", "", false, false, amqp.Publishing{Body: []byte("m")})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := c.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("confirm: %v %v", ok, err)
		}
	}
	if err := ch.PublishWithContext(ctx, "amq.direct", "nowhere", true, false, amqp.Publishing{Body: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returns:
	case <-time.After(5 * time.Second):
		t.Fatal("no basic.return")
	}
	ds, err := ch.Consume("q1", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := testkit.Receive(t, ds, 5*time.Second).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	d, ok, err := ch.Get("q2", false)
	if err != nil || !ok {
		t.Fatalf("basic.get: %v %v", ok, err)
	}
	if err := d.Nack(false, true); err != nil { // back, redelivered on the next get
		t.Fatal(err)
	}
	if d, ok, err = ch.Get("q2", true); err != nil || !ok || !d.Redelivered {
		t.Fatalf("second basic.get: %v %v %v", ok, err, d.Redelivered)
	}

	x := getObject(t, s, "/api/exchanges/%2F/fx")
	hasFields(t, "exchange", x, "message_stats.publish_in", "message_stats.publish_in_details.rate",
		"message_stats.publish_out", "message_stats.publish_out_details.rate")
	if ms := x["message_stats"].(map[string]any); ms["publish_in"] != 3.0 || ms["publish_out"] != 6.0 {
		t.Errorf("fx message_stats %v, want publish_in 3, publish_out 6", ms)
	}
	// The unroutable message is confirmed too (confirm 4), as AMQP has it.
	want := map[string]float64{"publish": 4, "confirm": 4, "return_unroutable": 1, "deliver": 3, "get": 2, "deliver_get": 5, "ack": 3, "redeliver": 1}
	testkit.Eventually(t, 5*time.Second, "the channel's message_stats", func() bool {
		chans := getList(t, s, "/api/channels")
		if len(chans) != 1 {
			return false
		}
		ms, _ := chans[0]["message_stats"].(map[string]any)
		for k, v := range want {
			if ms[k] != v {
				return false
			}
			if _, ok := ms[k+"_details"].(map[string]any)["rate"]; !ok {
				t.Fatalf("%s_details.rate missing: %v", k, ms)
			}
		}
		return true
	})
}
