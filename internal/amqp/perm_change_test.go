package amqp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// Changes to a user apply to its open connections as follows (RabbitMQ's
// access control guide lets a broker cache checks per channel until the
// user reconnects; Tern applies them at the next operation): a changed
// password leaves the connection open; a narrowed permission refuses the
// channel's next publish and consume, while a consumer started before
// keeps its deliveries (RabbitMQ checks read at basic.consume only); a
// permission removed from the vhost refuses every next operation, the
// connection staying open.
func TestPermissionChangesApplyToOpenChannels(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/users/u", map[string]string{"password": "pw"}, http.StatusCreated)
	api(t, s, "PUT", "/api/permissions/%2F/u", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	conn, err := dialAs(s, "u", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("pq", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("pq", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(ch *amqp.Channel, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := ch.PublishWithContext(ctx, "", "pq", false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(body string) {
		t.Helper()
		select {
		case d := <-deliveries:
			if string(d.Body) != body {
				t.Fatalf("delivered %q, want %q", d.Body, body)
			}
		case <-time.After(wait):
			t.Fatalf("%q not delivered", body)
		}
	}
	publish(ch, "before")
	expect("before")

	// A new password: the open connection stays and works.
	api(t, s, "PUT", "/api/users/u", map[string]string{"password": "new"}, http.StatusNoContent)
	publish(ch, "after the password")
	expect("after the password")

	// Read and write narrowed: the consumer keeps its deliveries (from
	// guest's publishes), a new consume and this channel's next publish
	// are refused.
	api(t, s, "PUT", "/api/permissions/%2F/u", map[string]string{"configure": ".*", "write": "^$", "read": "^$"}, http.StatusNoContent)
	_, gch := s.Channel(t)
	publish(gch, "from guest")
	expect("from guest")
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch2.Consume("pq", "", true, false, false, false, nil)
	ae := expectCode(t, err, amqp.AccessRefused)
	if !strings.Contains(ae.Reason, "read access to queue 'pq' in vhost '/' refused for user 'u'") {
		t.Errorf("a new consume: %q", ae.Reason)
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(ch, "refused")
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.AccessRefused || !strings.Contains(e.Reason, "write access to exchange 'amq.default' in vhost '/' refused for user 'u'") {
			t.Errorf("the next publish: %v", e)
		}
	case <-time.After(wait):
		t.Fatal("a publish after write was revoked was not refused")
	}

	// The vhost permission removed: the connection stays, every next
	// operation is refused.
	api(t, s, "DELETE", "/api/permissions/%2F/u", nil, http.StatusNoContent)
	ch3, err := conn.Channel()
	if err != nil {
		t.Fatalf("a channel after the permission was removed: %v", err)
	}
	_, err = ch3.QueueDeclare("other", false, true, false, false, nil)
	ae = expectCode(t, err, amqp.AccessRefused)
	if !strings.Contains(ae.Reason, "configure access to queue 'other' in vhost '/' refused for user 'u'") {
		t.Errorf("a declare without a permission: %q", ae.Reason)
	}
	if conn.IsClosed() {
		t.Fatal("removing a permission closed the connection")
	}
	if _, err := dialAs(s, "u", "new", "/"); err == nil {
		t.Error("a user without a permission in the vhost opened it")
	}
}
