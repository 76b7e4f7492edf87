package mgmt_test

import (
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// A stream's message_stats count as a classic queue's do: publishes, the
// deliveries to its consumers and their acks (quorum queues:
// broker/queue_stats_test.go).
func TestStreamMessageStats(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/st", map[string]any{"durable": true, "arguments": map[string]any{"x-queue-type": "stream"}}, http.StatusCreated)
	for range 3 {
		raw := guest(t, s, "POST", "/api/exchanges/%2F/amq.default/publish",
			map[string]any{"routing_key": "st", "payload": "m", "payload_encoding": "string", "properties": map[string]any{}}, http.StatusOK)
		if string(raw) != "{\"routed\":true}\n" {
			t.Fatalf("publish: %s", raw)
		}
	}
	_, ch := s.Channel(t)
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	ds, err := ch.Consume("st", "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		d := testkit.Receive(t, ds, 5*time.Second)
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "the stream's message_stats count 3 publishes, deliveries and acks", func() bool {
		ms, _ := getObject(t, s, "/api/queues/%2F/st")["message_stats"].(map[string]any)
		return ms["publish"] == 3.0 && ms["deliver_get"] == 3.0 && ms["ack"] == 3.0
	})
}
