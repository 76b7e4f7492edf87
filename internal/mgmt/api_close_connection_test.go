package mgmt_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// recoveringClient is amqp091-go's connection-recovery pattern: on
// NotifyClose it dials again and declares its topology (a queue, a
// binding, a consumer) before consuming again.
type recoveringClient struct {
	t      *testing.T
	url    string
	conn   *amqp.Connection
	closed chan *amqp.Error
	msgs   <-chan amqp.Delivery
}

func (c *recoveringClient) connect() {
	c.t.Helper()
	conn, err := amqp.DialConfig(c.url, amqp.Config{Properties: amqp.Table{"connection_name": "recovering"}})
	if err != nil {
		c.t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("events", "topic", true, false, false, false, nil); err != nil {
		c.t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("events.audit", true, false, false, false, nil); err != nil {
		c.t.Fatal(err)
	}
	if err := ch.QueueBind("events.audit", "audit.#", "events", false, nil); err != nil {
		c.t.Fatal(err)
	}
	msgs, err := ch.Consume("events.audit", "auditor", false, false, false, false, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.msgs = conn, msgs
	c.closed = conn.NotifyClose(make(chan *amqp.Error, 1))
}

// A connection closed through DELETE /api/connections/{name} with an
// X-Reason sees connection.close 320 with that reason; the client
// reconnects, restores its topology and keeps consuming.
func TestCloseConnectionAndRecover(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c := &recoveringClient{t: t, url: s.URL}
	c.connect()
	defer func() { _ = c.conn.Close() }()
	_, pub := s.Channel(t)
	publish := func(body string) {
		t.Helper()
		if err := pub.Publish("events", "audit.login", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	publish("before")
	d := testkit.Receive(t, c.msgs, 5*time.Second)
	if string(d.Body) != "before" {
		t.Fatalf("got %q", d.Body)
	}
	_ = d.Ack(false)

	var name string
	testkit.Eventually(t, 5*time.Second, "the connection is listed", func() bool {
		for _, conn := range getList(t, s, "/api/connections") {
			if conn["user_provided_name"] == "recovering" {
				name = conn["name"].(string)
			}
		}
		return name != ""
	})
	guest(t, s, "DELETE", "/api/connections/"+pathEscape(name), nil, http.StatusNoContent, "X-Reason", "rebalancing the cluster")
	select {
	case e := <-c.closed:
		if e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "rebalancing the cluster") {
			t.Fatalf("NotifyClose: %+v, want 320 with the reason", e)
		}
		if e.Reason != "CONNECTION_FORCED - rebalancing the cluster" {
			t.Errorf("reason %q, want RabbitMQ's form", e.Reason)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NotifyClose")
	}
	testkit.Eventually(t, 5*time.Second, "the closed connection is gone", func() bool {
		code, _ := apiCall(t, s, "GET", "/api/connections/"+pathEscape(name), "", "", nil)
		return code == http.StatusNotFound
	})
	guest(t, s, "DELETE", "/api/connections/"+pathEscape(name), nil, http.StatusNotFound)

	// Messages published while the client is away wait in its durable queue.
	publish("while away")
	c.connect()
	for i, want := range []string{"while away", "after"} {
		if i == 1 {
			publish("after")
		}
		d := testkit.Receive(t, c.msgs, 5*time.Second)
		if string(d.Body) != want {
			t.Fatalf("after recovery got %q, want %q", d.Body, want)
		}
		_ = d.Ack(false)
	}
	if n := len(getList(t, s, "/api/consumers")); n != 1 {
		t.Errorf("%d consumers after recovery, want 1", n)
	}
}

// Without X-Reason the reason is RabbitMQ's default.
func TestCloseConnectionDefaultReason(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	conn := s.Dial(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	var name string
	testkit.Eventually(t, 5*time.Second, "the connection is listed", func() bool {
		if l := getList(t, s, "/api/connections"); len(l) == 1 {
			name = l[0]["name"].(string)
		}
		return name != ""
	})
	guest(t, s, "DELETE", "/api/connections/"+pathEscape(name), nil, http.StatusNoContent)
	select {
	case e := <-closed:
		if e == nil || e.Code != 320 || e.Reason != "CONNECTION_FORCED - Closed via management plugin" {
			t.Fatalf("NotifyClose: %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no NotifyClose")
	}
	code, raw := apiCall(t, s, "DELETE", "/api/connections/"+pathEscape("127.0.0.1:1 -> 127.0.0.1:2"), "", "", nil)
	if e, r := errorBody(t, raw); code != http.StatusNotFound || e != "Object Not Found" || r != "Not Found" {
		t.Errorf("unknown connection: %d %s", code, raw)
	}
}
