package mqtt_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
	wire "github.com/tern-broker/tern/internal/wire/mqtt"
)

// An AMQP routing key that is no MQTT topic name (empty, with a wildcard,
// with U+0000 or invalid UTF-8) never reaches an MQTT subscriber: no
// PUBLISH may carry it [MQTT-4.7.3-1, MQTT-3.3.2-2, MQTT-1.5.4-1, -2], and
// libmosquitto drops the connection on one. The message is settled for that
// subscriber and counted, so a persistent session gets past it instead of
// being sent it again on every reconnect; the messages after it arrive. An
// AMQP reply-to that is no topic name is left out of the Response Topic.
func TestAMQPKeyThatIsNoTopicNameIsNotSentToMQTT(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	const id = "unsendable"
	r, _ := connect5(t, s, id, withExpiry(3600))
	subscribe5(t, r, "#", 1, false)

	_, ch := s.Channel(t)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 8))
	bad := []string{"", "e.x.#", "x.+", "nul\x00key", "bad\xffutf8"}
	for _, key := range append(bad, "poison.after") {
		err := ch.Publish("amq.topic", key, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ReplyTo: "replies.#", Body: []byte(key)})
		if err != nil {
			t.Fatal(err)
		}
		if c := <-confirms; !c.Ack {
			t.Fatalf("publish %q nacked", key)
		}
	}
	p := expectPublish(t, r)
	if p.Topic != "poison/after" || string(p.Payload) != "poison.after" {
		t.Fatalf("first PUBLISH: topic %q payload %q, want the valid one", p.Topic, p.Payload)
	}
	if p.Props.Has(wire.PropResponseTopic) {
		t.Fatalf("Response Topic %q sent from an AMQP reply-to with a wildcard", p.Props.ResponseTopic)
	}
	if n := s.MQTTStats().UnsendableTopics; n != uint64(len(bad)) {
		t.Fatalf("%d unsendable deliveries counted, want %d", n, len(bad))
	}
	if n := s.MQTTStats().DeliveriesOut; n != 1 {
		t.Fatalf("%d deliveries counted, want 1", n)
	}

	// Nothing is left in flight or in the session's queue, and a resumed
	// session gets nothing again.
	q, err := s.Broker.VHost("/").Queue("mqtt-subscription-"+id, 0)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the session queue empty", func() bool {
		ready, unacked, _ := q.Counts()
		return ready == 0 && unacked == 0
	})
	_ = r.NC.Close()
	r2, ack := connect5(t, s, id, func(c *wire.Connect) { c.CleanStart = false; withExpiry(3600)(c) })
	if !ack.SessionPresent {
		t.Fatal("the session did not survive")
	}
	expectQuiet(t, r2)
}
