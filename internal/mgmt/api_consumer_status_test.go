package mgmt_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// /api/consumers says which consumer of a single-active-consumer queue is
// the active one, as RabbitMQ does (active, activity_status); the others
// are waiting, and a consumer of an ordinary queue is up (user7 5.3).
func TestConsumersShowSingleActiveStatus(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn, err := amqp.Dial(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("sac", false, false, false, false, amqp.Table{"x-single-active-consumer": true}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("plain", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ queue, tag string }{{"sac", "first"}, {"sac", "second"}, {"plain", "other"}} {
		if _, err := ch.Consume(c.queue, c.tag, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	status := func() map[string]string {
		out := map[string]string{}
		for _, c := range getList(t, s, "/api/consumers") {
			out[c["consumer_tag"].(string)] = c["activity_status"].(string) + "/" + map[bool]string{true: "active", false: "inactive"}[c["active"] == true]
		}
		return out
	}
	got := status()
	if got["first"] != "single_active/active" || got["second"] != "waiting/inactive" || got["other"] != "up/active" {
		t.Fatalf("statuses %v", got)
	}
	q := getObject(t, s, "/api/queues/%2F/sac")
	if cd, _ := q["consumer_details"].([]any); len(cd) != 2 {
		t.Fatalf("consumer_details %v", q["consumer_details"])
	}
	if err := ch.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the waiting consumer becomes the active one", func() bool {
		got = status()
		return got["second"] == "single_active/active" && got["first"] == ""
	})
}
