package amqp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestTopicPermissionsAMQP: on a topic exchange the user's topic
// permission decides which routing keys it may publish with (write) and
// bind with (read), with {username} expanded; other exchanges are not
// affected.
func TestTopicPermissionsAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/users/dev1", map[string]string{"password": "pw"}, http.StatusCreated)
	api(t, s, "PUT", "/api/permissions/%2F/dev1", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	api(t, s, "PUT", "/api/topic-permissions/%2F/dev1", map[string]string{"exchange": "amq.topic", "write": `^sensors\.{username}\.`, "read": `^sensors\.{username}\.`}, http.StatusCreated)
	conn, err := dialAs(s, "dev1", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const refused = "ACCESS_REFUSED - %s access to topic '%s' in exchange 'amq.topic' in vhost '/' refused for user 'dev1'"
	for _, tc := range []struct {
		name string
		op   func(ch *amqp.Channel) error
		want string
	}{
		{"publish own key", func(ch *amqp.Channel) error { return publishWait(ch, "amq.topic", "sensors.dev1.temp") }, ""},
		{"publish other key", func(ch *amqp.Channel) error { return publishWait(ch, "amq.topic", "sensors.dev2.temp") },
			strings.Replace(strings.Replace(refused, "%s", "write", 1), "%s", "sensors.dev2.temp", 1)},
		{"publish elsewhere", func(ch *amqp.Channel) error { return publishWait(ch, "amq.direct", "sensors.dev2.temp") }, ""},
		{"bind own key", func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				return err
			}
			return ch.QueueBind(q.Name, "sensors.dev1.#", "amq.topic", false, nil)
		}, ""},
		{"bind other key", func(ch *amqp.Channel) error {
			q, err := ch.QueueDeclare("", false, true, true, false, nil)
			if err != nil {
				return err
			}
			return ch.QueueBind(q.Name, "sensors.#", "amq.topic", false, nil)
		}, strings.Replace(strings.Replace(refused, "%s", "read", 1), "%s", "sensors.#", 1)},
	} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		err = tc.op(ch)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ae *amqp.Error
		if err == nil || !asError(err, &ae) || ae.Code != amqp.AccessRefused || ae.Reason != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A permission change applies to open channels at their next publish.
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := publishWait(ch, "amq.topic", "sensors.dev1.a"); err != nil {
		t.Fatal(err)
	}
	api(t, s, "DELETE", "/api/topic-permissions/%2F/dev1", nil, http.StatusNoContent)
	if err := publishWait(ch, "amq.topic", "sensors.dev2.a"); err != nil {
		t.Fatalf("after the topic permission was removed: %v", err)
	}
	api(t, s, "PUT", "/api/permissions/%2F/dev1", map[string]string{"configure": ".*", "write": "^$", "read": ".*"}, http.StatusNoContent)
	if err := publishWait(ch, "amq.topic", "x"); err == nil || !strings.Contains(err.Error(), "write access to exchange 'amq.topic'") {
		t.Fatalf("after write was taken away: %v", err)
	}
}

// TestLimitsAMQP: a vhost's and a user's max-connections refuse
// connection.open, a user's max-channels refuses channel.open, a vhost's
// max-queues refuses a new queue, each with RabbitMQ's error.
func TestLimitsAMQP(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/vhosts/lim", nil, http.StatusCreated)
	api(t, s, "PUT", "/api/users/u", map[string]string{"password": "pw"}, http.StatusCreated)
	for _, v := range []string{"%2F", "lim"} {
		api(t, s, "PUT", "/api/permissions/"+v+"/u", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	}
	api(t, s, "PUT", "/api/permissions/lim/guest", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusNoContent) // guest made vhost lim: it already has full permissions

	// Vhost max-connections counts every user.
	api(t, s, "PUT", "/api/vhost-limits/lim/max-connections", map[string]int{"value": 1}, http.StatusNoContent)
	c1, err := dialAs(s, "guest", "guest", "lim")
	if err != nil {
		t.Fatal(err)
	}
	_, err = dialAs(s, "u", "pw", "lim")
	if err == nil || !strings.Contains(err.Error(), "access to vhost 'lim' refused for user 'u': connection limit (1) is reached") {
		t.Errorf("over the vhost's max-connections: %v", err)
	}
	expectCode(t, err, amqp.NotAllowed)
	_ = c1.Close()
	// The closed connection stops counting once the server has torn it
	// down, which may be just after the client saw close-ok.
	testkit.Eventually(t, wait, "a connection after the other closed", func() bool {
		c2, err := dialAs(s, "u", "pw", "lim")
		if err == nil {
			_ = c2.Close()
		}
		return err == nil
	})

	// User max-connections counts across vhosts.
	api(t, s, "PUT", "/api/user-limits/u/max-connections", map[string]int{"value": 1}, http.StatusNoContent)
	c3, err := dialAs(s, "u", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	_, err = dialAs(s, "u", "pw", "/")
	if err == nil || !strings.Contains(err.Error(), "access to vhost '/' refused for user 'u': user connection limit (1) is reached") {
		t.Errorf("over the user's max-connections: %v", err)
	}

	// User max-channels: the third channel is refused with 530.
	api(t, s, "PUT", "/api/user-limits/u/max-channels", map[string]int{"value": 2}, http.StatusNoContent)
	for i := 0; i < 2; i++ {
		if _, err := c3.Channel(); err != nil {
			t.Fatalf("channel %d: %v", i+1, err)
		}
	}
	_, err = c3.Channel()
	ae := expectCode(t, err, amqp.NotAllowed)
	if !strings.Contains(ae.Reason, "number of channels opened for user 'u' has reached the maximum allowed user limit of (2)") {
		t.Errorf("over max-channels: %q", ae.Reason)
	}

	// Vhost max-queues.
	api(t, s, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]int{"value": 2}, http.StatusNoContent)
	_, ch := s.Channel(t)
	for _, q := range []string{"q1", "q2"} {
		if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.QueueDeclare("q1", false, true, false, false, nil); err != nil {
		t.Fatalf("redeclaring at the limit: %v", err)
	}
	_, err = ch.QueueDeclare("q3", false, true, false, false, nil)
	ae = expectCode(t, err, amqp.PreconditionFailed)
	if ae.Reason != "PRECONDITION_FAILED - cannot declare queue 'q3' in vhost '/': vhost queue limit (2) is reached" {
		t.Errorf("over max-queues: %q", ae.Reason)
	}
	// Removing a limit lifts it.
	api(t, s, "DELETE", "/api/vhost-limits/%2F/max-queues", nil, http.StatusNoContent)
	_, ch = s.Channel(t)
	if _, err := ch.QueueDeclare("q3", false, true, false, false, nil); err != nil {
		t.Fatalf("after the limit was removed: %v", err)
	}
}

// TestDeletingAUserClosesItsConnections: as in RabbitMQ, a deleted user's
// open connections are closed (320 CONNECTION_FORCED), not only its new
// logins refused; another user's stay.
func TestDeletingAUserClosesItsConnections(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/users/gone", map[string]string{"password": "pw"}, http.StatusCreated)
	api(t, s, "PUT", "/api/permissions/%2F/gone", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	conn, err := dialAs(s, "gone", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other := s.Dial(t)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	api(t, s, "DELETE", "/api/users/gone", nil, http.StatusNoContent)
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("closed with %v, want 320", e)
		}
	case <-time.After(wait):
		t.Fatal("the deleted user's connection stayed open")
	}
	if other.IsClosed() {
		t.Error("guest's connection was closed too")
	}
	if _, err := dialAs(s, "gone", "pw", "/"); err == nil {
		t.Error("a deleted user logged in")
	}
}
