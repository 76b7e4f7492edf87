package amqp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// api calls the HTTP API as guest (the default administrator) and fails
// the test unless the status is want.
func api(t *testing.T, s *testkit.Server, method, path string, body any, want int) []byte {
	t.Helper()
	return apiAs(t, s, "guest", "guest", method, path, body, want)
}

func apiAs(t *testing.T, s *testkit.Server, user, pass, method, path string, body any, want int) []byte {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.HTTPURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d (%s), want %d", method, path, resp.StatusCode, buf.String(), want)
	}
	return buf.Bytes()
}

// dialAs connects as user to vhost.
func dialAs(s *testkit.Server, user, pass, vhost string) (*amqp.Connection, error) {
	addr := strings.TrimSuffix(strings.TrimPrefix(s.URL, "amqp://guest:guest@"), "/")
	return amqp.Dial(fmt.Sprintf("amqp://%s:%s@%s/%s", user, pass, addr, url.PathEscape(vhost)))
}

// TestPermissionTable checks every AMQP operation RabbitMQ's access control
// guide lists against a user whose expressions allow resources named
// "u-…" (and server-named queues for configure): allowed, or refused with
// RabbitMQ's exact text.
func TestPermissionTable(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/vhosts/v2", nil, http.StatusCreated)
	api(t, s, "PUT", "/api/users/u", map[string]any{"password": "pw", "tags": ""}, http.StatusCreated)
	api(t, s, "PUT", "/api/permissions/%2F/u", map[string]string{"configure": `^(u-|amq\.gen-)`, "write": `^u-`, "read": `^u-`}, http.StatusCreated)

	// The resources, made by guest.
	_, gch := s.Channel(t)
	for _, x := range []string{"u-x", "other-x"} {
		if err := gch.ExchangeDeclare(x, "direct", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"u-q", "other-q"} {
		if _, err := gch.QueueDeclare(q, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := gch.QueueBind("other-q", "k", "u-x", false, nil); err != nil {
		t.Fatal(err)
	}

	const refused = "ACCESS_REFUSED - %s access to %s '%s' in vhost '/' refused for user 'u'"
	cases := []struct {
		name string
		op   func(ch *amqp.Channel) error
		want string // "" allowed
	}{
		{"exchange.declare own", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("u-x2", "fanout", false, true, false, false, nil)
		}, ""},
		{"exchange.declare other", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("other-x2", "fanout", false, true, false, false, nil)
		}, fmt.Sprintf(refused, "configure", "exchange", "other-x2")},
		{"exchange.declare passive other", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclarePassive("other-x", "direct", false, false, false, false, nil)
		}, ""},
		{"exchange.declare with AE not writable", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("u-x3", "fanout", false, true, false, false, amqp.Table{"alternate-exchange": "other-x"})
		}, fmt.Sprintf(refused, "write", "exchange", "other-x")},
		{"exchange.delete other", func(ch *amqp.Channel) error { return ch.ExchangeDelete("other-x", false, false) }, fmt.Sprintf(refused, "configure", "exchange", "other-x")},
		{"exchange.delete own", func(ch *amqp.Channel) error { return ch.ExchangeDelete("u-x2", false, false) }, ""},
		{"queue.declare own", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("u-q2", false, true, false, false, nil)
			return err
		}, ""},
		{"queue.declare server-named", func(ch *amqp.Channel) error { _, err := ch.QueueDeclare("", false, true, true, false, nil); return err }, ""},
		{"queue.declare other", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("other-q2", false, true, false, false, nil)
			return err
		}, fmt.Sprintf(refused, "configure", "queue", "other-q2")},
		{"queue.declare with DLX not writable", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("u-q3", false, true, false, false, amqp.Table{"x-dead-letter-exchange": "other-x"})
			return err
		}, fmt.Sprintf(refused, "write", "exchange", "other-x")},
		{"queue.declare passive other", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive("other-q", false, false, false, false, nil)
			return err
		}, ""},
		{"queue.delete other", func(ch *amqp.Channel) error { _, err := ch.QueueDelete("other-q", false, false, false); return err }, fmt.Sprintf(refused, "configure", "queue", "other-q")},
		{"queue.bind own", func(ch *amqp.Channel) error { return ch.QueueBind("u-q", "k", "u-x", false, nil) }, ""},
		{"queue.bind to other queue", func(ch *amqp.Channel) error { return ch.QueueBind("other-q", "k2", "u-x", false, nil) }, fmt.Sprintf(refused, "write", "queue", "other-q")},
		{"queue.bind from other exchange", func(ch *amqp.Channel) error { return ch.QueueBind("u-q", "k", "other-x", false, nil) }, fmt.Sprintf(refused, "read", "exchange", "other-x")},
		{"queue.unbind other queue", func(ch *amqp.Channel) error { return ch.QueueUnbind("other-q", "k", "u-x", nil) }, fmt.Sprintf(refused, "write", "queue", "other-q")},
		{"queue.unbind own", func(ch *amqp.Channel) error { return ch.QueueUnbind("u-q", "k", "u-x", nil) }, ""},
		{"exchange.bind to other", func(ch *amqp.Channel) error { return ch.ExchangeBind("other-x", "k", "u-x", false, nil) }, fmt.Sprintf(refused, "write", "exchange", "other-x")},
		{"exchange.bind from other", func(ch *amqp.Channel) error { return ch.ExchangeBind("u-x", "k", "other-x", false, nil) }, fmt.Sprintf(refused, "read", "exchange", "other-x")},
		{"exchange.unbind to other", func(ch *amqp.Channel) error { return ch.ExchangeUnbind("other-x", "k", "u-x", false, nil) }, fmt.Sprintf(refused, "write", "exchange", "other-x")},
		{"basic.publish own", func(ch *amqp.Channel) error { return publishWait(ch, "u-x", "k") }, ""},
		{"basic.publish other", func(ch *amqp.Channel) error { return publishWait(ch, "other-x", "k") }, fmt.Sprintf(refused, "write", "exchange", "other-x")},
		{"basic.publish default exchange", func(ch *amqp.Channel) error { return publishWait(ch, "", "u-q") }, fmt.Sprintf(refused, "write", "exchange", "amq.default")},
		{"basic.consume own", func(ch *amqp.Channel) error {
			_, err := ch.Consume("u-q", "", true, false, false, false, nil)
			return err
		}, ""},
		{"basic.consume other", func(ch *amqp.Channel) error {
			_, err := ch.Consume("other-q", "", true, false, false, false, nil)
			return err
		}, fmt.Sprintf(refused, "read", "queue", "other-q")},
		{"basic.get own", func(ch *amqp.Channel) error { _, _, err := ch.Get("u-q", true); return err }, ""},
		{"basic.get other", func(ch *amqp.Channel) error { _, _, err := ch.Get("other-q", true); return err }, fmt.Sprintf(refused, "read", "queue", "other-q")},
		{"queue.purge own", func(ch *amqp.Channel) error { _, err := ch.QueuePurge("u-q", false); return err }, ""},
		{"queue.purge other", func(ch *amqp.Channel) error { _, err := ch.QueuePurge("other-q", false); return err }, fmt.Sprintf(refused, "read", "queue", "other-q")},
	}
	conn, err := dialAs(s, "u", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range cases {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("%s: channel: %v", c.name, err)
		}
		err = c.op(ch)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want allowed", c.name, err)
			}
			_ = ch.Close()
			continue
		}
		var ae *amqp.Error
		if err == nil || !asError(err, &ae) || ae.Code != amqp.AccessRefused || ae.Reason != c.want {
			t.Errorf("%s: got %v, want 403 %q", c.name, err, c.want)
		}
	}

	// The vhost: no permission there, no connection (530 NOT_ALLOWED).
	if _, err := dialAs(s, "u", "pw", "v2"); err == nil || !strings.Contains(err.Error(), "access to vhost 'v2' refused for user 'u'") {
		t.Errorf("connecting to v2 without a permission: %v", err)
	}
}

// publishWait publishes in confirm mode and waits for the broker's answer,
// so a refusal (which closes the channel) is seen.
func publishWait(ch *amqp.Channel, exchange, key string) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, amqp.Publishing{Body: []byte("m")})
	if err != nil {
		return err
	}
	select {
	case <-dc.Done():
		if dc.Acked() {
			return nil
		}
	case e := <-closed:
		if e != nil {
			return e
		}
	}
	if e, ok := <-closed; ok && e != nil {
		return e
	}
	return fmt.Errorf("publish nacked")
}

func asError(err error, target **amqp.Error) bool {
	ae, ok := err.(*amqp.Error)
	if ok {
		*target = ae
	}
	return ok
}
