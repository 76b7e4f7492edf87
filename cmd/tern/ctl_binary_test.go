package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestCtl runs every `tern ctl` command against one `tern server`; the
// subtests run in parallel on objects of their own names or vhosts.
func TestCtl(t *testing.T) {
	s := startCtlServer(t)

	t.Run("queues", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "declare", "queue", "ctl-q", "--arguments", `{"x-max-length": 10}`).ok(t)
		var q struct {
			Durable   bool           `json:"durable"`
			Arguments map[string]any `json:"arguments"`
		}
		if s.api(t, "/api/queues/%2F/ctl-q", &q) != 200 || !q.Durable || q.Arguments["x-max-length"] != float64(10) {
			t.Fatalf("declared queue is %+v", q)
		}
		// The same again is fine; different arguments are refused (406 in AMQP, 400 here).
		s.ctl(t, "declare", "queue", "ctl-q", "--arguments", `{"x-max-length": 10}`).ok(t)
		r := s.ctl(t, "declare", "queue", "ctl-q", "--arguments", `{"x-max-length": 11}`).exit(t, exitRejected)
		if !strings.Contains(r.stderr, "x-max-length") {
			t.Errorf("stderr lacks the server's reason: %s", r.stderr)
		}
		s.ctl(t, "declare", "queue", "ctl-q-transient", "--durable=false", "--auto-delete=false").ok(t)
		out := s.ctl(t, "list", "queues").ok(t).stdout
		lines := strings.Split(out, "\n")
		if !strings.HasPrefix(lines[0], "vhost  name") || !strings.Contains(out, "ctl-q ") {
			t.Fatalf("list queues:\n%s", out)
		}
		// The table's columns line up: every row's second column starts where the header's does.
		col := strings.Index(lines[0], "name")
		for _, l := range lines[1:] {
			if l != "" && (len(l) <= col || l[col-1] != ' ' || l[col] == ' ') {
				t.Errorf("misaligned row %q (header %q)", l, lines[0])
			}
		}
		rows := s.ctl(t, "list", "queues", "--json", "--columns", "name,durable,messages").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"name": "ctl-q-transient", "durable": false, "messages": 0}) || len(rows[0]) != 3 {
			t.Fatalf("--json --columns: %v", rows)
		}
		s.ctl(t, "delete", "queue", "ctl-q-transient").ok(t)
		if s.queueMessages(t, "/", "ctl-q-transient") != -1 {
			t.Fatal("deleted queue still there")
		}
		s.ctl(t, "delete", "queue", "ctl-q-transient").exit(t, exitNotFound)
		// (A quorum queue needs a cluster; a single node takes streams.)
		s.ctl(t, "declare", "queue", "ctl-stream", "--type", "stream").ok(t)
		var qq struct {
			Type string `json:"type"`
		}
		if s.api(t, "/api/queues/%2F/ctl-stream", &qq); qq.Type != "stream" {
			t.Fatalf("--type stream made a %q queue", qq.Type)
		}
	})

	t.Run("vhost-filter-and-escaping", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "add-vhost", "ctl/filter").ok(t)
		s.ctl(t, "declare", "queue", "in-filter", "--vhost", "ctl/filter").ok(t)
		if s.queueMessages(t, "ctl/filter", "in-filter") != 0 {
			t.Fatal("queue not declared in the vhost named with a slash")
		}
		rows := s.ctl(t, "list", "queues", "--vhost", "ctl/filter", "--json").ok(t).rows(t)
		if len(rows) != 1 || rows[0]["name"] != "in-filter" {
			t.Fatalf("--vhost filter: %v", rows)
		}
		if rows := s.ctl(t, "list", "queues", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"vhost": "ctl/filter", "name": "in-filter"}) {
			t.Fatal("list without --vhost lacks the other vhost's queue")
		}
		s.ctl(t, "list", "queues", "--vhost", "no-such-vhost", "--json").exit(t, exitNotFound)
	})

	t.Run("exchanges-bindings-publish", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "declare", "exchange", "ctl-x", "--type", "topic").ok(t)
		s.ctl(t, "declare", "queue", "ctl-xq").ok(t)
		s.ctl(t, "declare", "binding", "--source", "ctl-x", "--destination", "ctl-xq", "--routing-key", "a.*").ok(t)
		if rows := s.ctl(t, "list", "exchanges", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"name": "ctl-x", "type": "topic"}) {
			t.Fatalf("list exchanges: %v", rows)
		}
		rows := s.ctl(t, "list", "bindings", "--json").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"source": "ctl-x", "destination": "ctl-xq", "routing_key": "a.*"}) {
			t.Fatalf("list bindings: %v", rows)
		}
		r := s.ctl(t, "publish", "hello", "--exchange", "ctl-x", "--routing-key", "a.b").ok(t)
		if !strings.Contains(r.stdout, "routed") || strings.Contains(r.stdout, "NOT") {
			t.Fatalf("publish: %s", r.stdout)
		}
		if n := s.queueMessages(t, "/", "ctl-xq"); n != 1 {
			t.Fatalf("queue has %d messages after a routed publish", n)
		}
		s.ctl(t, "delete", "binding", "--source", "ctl-x", "--destination", "ctl-xq", "--routing-key", "a.*").ok(t)
		s.ctl(t, "delete", "binding", "--source", "ctl-x", "--destination", "ctl-xq", "--routing-key", "a.*").exit(t, exitNotFound)
		r = s.ctl(t, "publish", "--json", "lost", "--exchange", "ctl-x", "--routing-key", "a.b").ok(t)
		if strings.TrimSpace(strings.Join(strings.Fields(r.stdout), "")) != `{"routed":false}` {
			t.Fatalf("unroutable publish --json: %s", r.stdout)
		}
		// Exchange-to-exchange binding.
		s.ctl(t, "declare", "exchange", "ctl-x2", "--type", "fanout").ok(t)
		s.ctl(t, "declare", "binding", "--source", "ctl-x2", "--destination", "ctl-x", "--destination-type", "exchange").ok(t)
		s.ctl(t, "declare", "binding", "--source", "ctl-x", "--destination", "ctl-xq", "--routing-key", "#").ok(t)
		s.ctl(t, "publish", "via-x2", "--exchange", "ctl-x2").ok(t)
		if n := s.queueMessages(t, "/", "ctl-xq"); n != 2 {
			t.Fatalf("queue has %d messages, want 2 after the exchange-to-exchange route", n)
		}
		s.ctl(t, "delete", "exchange", "ctl-x2").ok(t)
		s.ctl(t, "delete", "exchange", "ctl-x2").exit(t, exitNotFound)
		s.ctl(t, "declare", "exchange", "ctl-x", "--type", "fanout").exit(t, exitRejected)
	})

	t.Run("publish-get-purge", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "declare", "queue", "ctl-pg").ok(t)
		s.ctl(t, "publish", "--routing-key", "ctl-pg", "first", "--content-type", "text/plain", "--header", "k=v", "--persistent", "--message-id", "m1").ok(t)
		binary := string([]byte{0, 0xff, 1})
		s.ctlIn(t, binary, "publish", "--routing-key", "ctl-pg").ok(t)
		s.ctlIn(t, "from stdin", "publish", "-", "--routing-key", "ctl-pg", "--properties", `{"app_id":"tests"}`).ok(t)
		// Peek (the default) leaves the messages; the table shows them.
		r := s.ctl(t, "get", "ctl-pg", "--count", "3").ok(t)
		if !strings.Contains(r.stdout, "first") || !strings.Contains(r.stdout, "from stdin") || !strings.Contains(r.stdout, "base64") {
			t.Fatalf("get:\n%s", r.stdout)
		}
		if n := s.queueMessages(t, "/", "ctl-pg"); n != 3 {
			t.Fatalf("after a peek the queue has %d messages, want 3", n)
		}
		// Take one for good and check what amqp091-go sees of the rest.
		rows := s.ctl(t, "get", "ctl-pg", "--requeue=false", "--json").ok(t).rows(t)
		if len(rows) != 1 || rows[0]["payload"] != "first" || cell(rows[0]["properties"].(map[string]any)["headers"]) != `{"k":"v"}` {
			t.Fatalf("get --requeue=false: %v", rows)
		}
		conn, err := amqp.Dial(s.amqpURL("admin", ctlAdminPass, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		d, ok, err := ch.Get("ctl-pg", false)
		if err != nil || !ok || string(d.Body) != binary {
			t.Fatalf("amqp get: %v %v %q", err, ok, d.Body)
		}
		d2, ok, err := ch.Get("ctl-pg", false)
		if err != nil || !ok || string(d2.Body) != "from stdin" || d2.AppId != "tests" {
			t.Fatalf("amqp get: %v %v %+v", err, ok, d2)
		}
		_ = ch.Nack(d2.DeliveryTag, true, true) // both back
		s.ctl(t, "get", "ctl-pg", "--ackmode", "ack_requeue_true", "--requeue=false").exit(t, exitUsage)
		s.ctl(t, "get", "ctl-pg", "--ackmode", "bogus").exit(t, exitRejected)
		eventually(t, "nacked messages back", func() bool { return s.queueMessages(t, "/", "ctl-pg") == 2 })
		s.ctl(t, "purge", "queue", "ctl-pg").ok(t)
		if n := s.queueMessages(t, "/", "ctl-pg"); n != 0 {
			t.Fatalf("purged queue has %d messages", n)
		}
		s.ctl(t, "purge", "queue", "ctl-no-such").exit(t, exitNotFound)
		s.ctl(t, "get", "ctl-no-such").exit(t, exitNotFound)
		s.ctl(t, "publish", "x", "--exchange", "ctl-no-such").exit(t, exitNotFound)
	})

	t.Run("connections-channels-consumers-close", func(t *testing.T) {
		t.Parallel()
		cfg := amqp.Config{Properties: amqp.Table{"connection_name": "ctl-test-conn"}}
		conn, err := amqp.DialConfig(s.amqpURL("admin", ctlAdminPass, "/"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare("ctl-cq", false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.Consume("ctl-cq", "ctl-consumer-tag", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		var name string
		eventually(t, "the connection listed", func() bool {
			for _, r := range s.ctl(t, "list", "connections", "--json").ok(t).rows(t) {
				if r["user_provided_name"] == "ctl-test-conn" {
					name, _ = r["name"].(string)
				}
			}
			return name != ""
		})
		if out := s.ctl(t, "list", "connections").ok(t).stdout; !strings.Contains(out, name) {
			t.Fatalf("list connections table lacks %s:\n%s", name, out)
		}
		if rows := s.ctl(t, "list", "channels", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"connection_details.name": name}) {
			t.Fatalf("list channels: %v", rows)
		}
		rows := s.ctl(t, "list", "consumers", "--json", "--columns", "queue.name,consumer_tag").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"queue.name": "ctl-cq", "consumer_tag": "ctl-consumer-tag"}) {
			t.Fatalf("list consumers: %v", rows)
		}
		s.ctl(t, "close-connection", name, "--reason", "maintenance by ctl").ok(t)
		select {
		case e := <-closed:
			if e == nil || e.Code != amqp.ConnectionForced || !strings.Contains(e.Reason, "maintenance by ctl") {
				t.Fatalf("client saw %v, want 320 with the reason", e)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("connection not closed")
		}
		s.ctl(t, "close-connection", "127.0.0.1:1 -> 127.0.0.1:2").exit(t, exitNotFound)
	})

	t.Run("close-mqtt-connection", func(t *testing.T) {
		t.Parallel()
		lost := make(chan error, 1)
		o := paho.NewClientOptions().AddBroker("tcp://" + s.mqttAddr).SetClientID("ctl-mqtt-dev").SetUsername("admin").
			SetPassword(ctlAdminPass).SetAutoReconnect(false).SetProtocolVersion(4).
			SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("MQTT connect: %v", tok.Error())
		}
		defer c.Disconnect(0)
		var name string
		eventually(t, "the MQTT connection listed", func() bool {
			for _, r := range s.ctl(t, "list", "connections", "--json").ok(t).rows(t) {
				if r["user_provided_name"] == "ctl-mqtt-dev" {
					name, _ = r["name"].(string)
				}
			}
			return name != ""
		})
		s.ctl(t, "close-connection", name).ok(t)
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatal("MQTT client still connected after close-connection")
		}
	})

	t.Run("users-and-permissions", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "add-vhost", "ctl-users").ok(t)
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte("first-pass\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.ctl(t, "add-user", "ctl-bob", "--password-file", pwFile, "--tags", "monitoring,management").ok(t)
		s.ctl(t, "add-user", "ctl-bob", "--password-file", pwFile).exit(t, exitRejected)
		s.ctl(t, "add-user", "ctl-nopass").exit(t, exitUsage) // no password source and no terminal
		rows := s.ctl(t, "list", "users", "--json").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"name": "ctl-bob", "tags": []any{"monitoring", "management"}}) {
			t.Fatalf("list users: %v", rows)
		}
		if strings.Contains(s.ctl(t, "list", "users").ok(t).stdout, "argon2id") {
			t.Fatal("the users table shows password hashes")
		}
		// No permission in the vhost yet: AMQP login to it is refused.
		if c, err := amqp.Dial(s.amqpURL("ctl-bob", "first-pass", "ctl-users")); err == nil {
			c.Close()
			t.Fatal("logged in without permissions")
		}
		s.ctl(t, "set-permissions", "ctl-bob", "^ctl-", ".*", ".*", "--vhost", "ctl-users").ok(t)
		rows = s.ctl(t, "list", "permissions", "--vhost", "ctl-users", "--json").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"user": "ctl-bob", "configure": "^ctl-", "write": ".*", "read": ".*"}) {
			t.Fatalf("list permissions: %v", rows)
		}
		c, err := amqp.Dial(s.amqpURL("ctl-bob", "first-pass", "ctl-users"))
		if err != nil {
			t.Fatalf("login after set-permissions: %v", err)
		}
		c.Close()
		// The new user can use ctl itself (read-only: it is not an administrator).
		s.ctlAs(t, "ctl-bob", "first-pass", "", "list", "queues").ok(t)
		s.ctlAs(t, "ctl-bob", "first-pass", "", "declare", "queue", "ctl-bobs").exit(t, exitRefused)
		s.ctlIn(t, "second-pass\n", "change-password", "ctl-bob", "--password-stdin").ok(t)
		s.ctlAs(t, "ctl-bob", "first-pass", "", "list", "queues").exit(t, exitRefused)
		s.ctlAs(t, "ctl-bob", "second-pass", "", "list", "queues").ok(t)
		var u struct {
			Tags []string `json:"tags"`
		}
		if s.api(t, "/api/users/ctl-bob", &u); strings.Join(u.Tags, ",") != "monitoring,management" {
			t.Fatalf("change-password lost the tags: %v", u.Tags)
		}
		s.ctlIn(t, "x\n", "change-password", "ctl-nobody", "--password-stdin").exit(t, exitNotFound)
		s.ctl(t, "set-user-tags", "ctl-bob", "administrator").ok(t)
		s.ctlAs(t, "ctl-bob", "second-pass", "", "declare", "queue", "ctl-bobs").ok(t)
		s.ctl(t, "set-user-tags", "ctl-bob").ok(t)
		s.ctlAs(t, "ctl-bob", "second-pass", "", "list", "queues").exit(t, exitRefused)

		s.ctl(t, "set-topic-permissions", "ctl-bob", "amq.topic", "^a\\.", "^b\\.", "--vhost", "ctl-users").ok(t)
		rows = s.ctl(t, "list", "topic-permissions", "--json").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"user": "ctl-bob", "vhost": "ctl-users", "exchange": "amq.topic", "write": "^a\\.", "read": "^b\\."}) {
			t.Fatalf("list topic-permissions: %v", rows)
		}
		s.ctl(t, "clear-topic-permissions", "ctl-bob", "amq.topic", "--vhost", "ctl-users").ok(t)
		s.ctl(t, "clear-topic-permissions", "ctl-bob", "--vhost", "ctl-users").exit(t, exitNotFound)

		s.ctl(t, "clear-permissions", "ctl-bob", "--vhost", "ctl-users").ok(t)
		if c, err := amqp.Dial(s.amqpURL("ctl-bob", "second-pass", "ctl-users")); err == nil {
			c.Close()
			t.Fatal("logged in after clear-permissions")
		}
		s.ctl(t, "clear-permissions", "ctl-bob", "--vhost", "ctl-users").exit(t, exitNotFound)
		s.ctl(t, "delete-user", "ctl-bob").ok(t)
		if s.api(t, "/api/users/ctl-bob", nil) != 404 {
			t.Fatal("deleted user still there")
		}
		s.ctl(t, "delete-user", "ctl-bob").exit(t, exitNotFound)
		s.ctl(t, "add-user", "ctl-cert", "--no-password").ok(t)
		s.ctl(t, "delete", "user", "ctl-cert").ok(t)
	})

	t.Run("vhosts-and-limits", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "add-vhost", "ctl-limits").ok(t)
		s.ctl(t, "add-vhost", "ctl-limits").ok(t) // already there: fine
		if rows := s.ctl(t, "list", "vhosts", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"name": "ctl-limits"}) {
			t.Fatalf("list vhosts: %v", rows)
		}
		// A vhost made at run time has no permissions yet, not even the administrator's.
		s.ctl(t, "set-permissions", "admin", ".*", ".*", ".*", "--vhost", "ctl-limits").ok(t)
		s.ctl(t, "set-vhost-limit", "max-connections", "1", "--vhost", "ctl-limits").ok(t)
		if rows := s.ctl(t, "list", "vhost-limits", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"vhost": "ctl-limits", "value.max-connections": 1}) {
			t.Fatalf("list vhost-limits: %v", rows)
		}
		c1, err := amqp.Dial(s.amqpURL("admin", ctlAdminPass, "ctl-limits"))
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		if c2, err := amqp.Dial(s.amqpURL("admin", ctlAdminPass, "ctl-limits")); err == nil {
			c2.Close()
			t.Fatal("a second connection despite max-connections 1")
		}
		s.ctl(t, "set-vhost-limit", "max-bananas", "1", "--vhost", "ctl-limits").exit(t, exitRejected)
		s.ctl(t, "set-vhost-limit", "max-queues", "many", "--vhost", "ctl-limits").exit(t, exitRejected)
		s.ctl(t, "clear-vhost-limit", "max-connections", "--vhost", "ctl-limits").ok(t)
		s.ctl(t, "clear-vhost-limit", "max-connections", "--vhost", "ctl-limits").exit(t, exitNotFound)
		c2, err := amqp.Dial(s.amqpURL("admin", ctlAdminPass, "ctl-limits"))
		if err != nil {
			t.Fatalf("second connection after clear-vhost-limit: %v", err)
		}
		c2.Close()

		s.ctl(t, "set-user-limit", "watcher", "max-channels", "2").ok(t)
		if rows := s.ctl(t, "list", "user-limits", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"user": "watcher", "value.max-channels": 2}) {
			t.Fatalf("list user-limits: %v", rows)
		}
		s.ctl(t, "clear-user-limit", "watcher", "max-channels").ok(t)
		s.ctl(t, "set-user-limit", "ctl-nobody", "max-channels", "2").exit(t, exitRejected)

		s.ctl(t, "declare", "queue", "doomed", "--vhost", "ctl-limits").ok(t)
		c1.Close()
		s.ctl(t, "delete-vhost", "ctl-limits").ok(t)
		if s.api(t, "/api/vhosts/ctl-limits", nil) != 404 || s.queueMessages(t, "ctl-limits", "doomed") != -1 {
			t.Fatal("deleted vhost or its queue still there")
		}
		s.ctl(t, "delete", "vhost", "ctl-limits").exit(t, exitNotFound)
	})

	t.Run("policies", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "add-vhost", "ctl-pol").ok(t)
		s.ctl(t, "set-policy", "cap", "^capped-", `{"max-length": 2}`, "--apply-to", "queues", "--priority", "3", "--vhost", "ctl-pol").ok(t)
		rows := s.ctl(t, "list", "policies", "--json", "--vhost", "ctl-pol").ok(t).rows(t)
		if !hasRow(rows, map[string]any{"name": "cap", "pattern": "^capped-", "apply-to": "queues", "priority": 3, "definition.max-length": 2}) {
			t.Fatalf("list policies: %v", rows)
		}
		s.ctl(t, "declare", "queue", "capped-q", "--vhost", "ctl-pol").ok(t)
		for i := 0; i < 5; i++ {
			s.ctl(t, "publish", "m", "--routing-key", "capped-q", "--vhost", "ctl-pol").ok(t)
		}
		if n := s.queueMessages(t, "ctl-pol", "capped-q"); n != 2 {
			t.Fatalf("queue under a max-length 2 policy holds %d messages", n)
		}
		s.ctl(t, "set-policy", "bad", ".*", `{"no-such-key": 1}`, "--vhost", "ctl-pol").exit(t, exitRejected)
		s.ctl(t, "set-policy", "bad", ".*", `not json`, "--vhost", "ctl-pol").exit(t, exitUsage)
		s.ctl(t, "clear-policy", "cap", "--vhost", "ctl-pol").ok(t)
		if rows := s.ctl(t, "list", "policies", "--json", "--vhost", "ctl-pol").ok(t).rows(t); len(rows) != 0 {
			t.Fatalf("policies after clear-policy: %v", rows)
		}
		s.ctl(t, "clear-policy", "cap", "--vhost", "ctl-pol").exit(t, exitNotFound)
		s.ctl(t, "set-policy", "p2", ".*", `{"max-length": 9}`, "--vhost", "ctl-pol").ok(t)
		s.ctl(t, "delete", "policy", "p2", "--vhost", "ctl-pol").ok(t)
		s.ctl(t, "set-policy", "p3", ".*", `{"max-length": 9}`, "--vhost", "ctl-no-such").exit(t, exitNotFound)
		// Operator policies live apart from policies.
		s.ctl(t, "set-policy", "opcap", ".*", `{"max-length": 100}`, "--operator", "--vhost", "ctl-pol").ok(t)
		if rows := s.ctl(t, "list", "operator-policies", "--vhost", "ctl-pol", "--json").ok(t).rows(t); !hasRow(rows, map[string]any{"name": "opcap"}) {
			t.Fatalf("list operator-policies: %v", rows)
		}
		if rows := s.ctl(t, "list", "policies", "--vhost", "ctl-pol", "--json").ok(t).rows(t); len(rows) != 0 {
			t.Fatalf("an operator policy listed among the policies: %v", rows)
		}
		s.ctl(t, "clear-policy", "opcap", "--vhost", "ctl-pol").exit(t, exitNotFound)
		s.ctl(t, "clear-policy", "opcap", "--operator", "--vhost", "ctl-pol").ok(t)
	})

	t.Run("export-import", func(t *testing.T) {
		t.Parallel()
		s.ctl(t, "add-vhost", "ctl-defs").ok(t)
		s.ctl(t, "declare", "queue", "kept", "--vhost", "ctl-defs", "--arguments", `{"x-message-ttl": 60000}`).ok(t)
		s.ctl(t, "declare", "exchange", "kept-x", "--type", "fanout", "--vhost", "ctl-defs").ok(t)
		file := filepath.Join(t.TempDir(), "defs.json")
		s.ctl(t, "export", file, "--vhost", "ctl-defs").ok(t)
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("export file: %v %v", fi, err)
		}
		raw, _ := os.ReadFile(file)
		var defs struct {
			Queues []struct {
				Name string `json:"name"`
			} `json:"queues"`
		}
		if err := json.Unmarshal(raw, &defs); err != nil || len(defs.Queues) != 1 || defs.Queues[0].Name != "kept" {
			t.Fatalf("exported definitions: %v %s", err, raw)
		}
		s.ctl(t, "delete", "queue", "kept", "--vhost", "ctl-defs").ok(t)
		s.ctl(t, "delete", "exchange", "kept-x", "--vhost", "ctl-defs").ok(t)
		s.ctl(t, "import", file, "--vhost", "ctl-defs").ok(t)
		var q struct {
			Arguments map[string]any `json:"arguments"`
		}
		if s.api(t, "/api/queues/ctl-defs/kept", &q) != 200 || q.Arguments["x-message-ttl"] != float64(60000) {
			t.Fatalf("queue after import: %+v", q)
		}
		if s.api(t, "/api/exchanges/ctl-defs/kept-x", nil) != 200 {
			t.Fatal("exchange not imported")
		}
		// Whole-broker export to stdout, import from stdin.
		all := s.ctl(t, "export", "-").ok(t).stdout
		if !strings.Contains(all, `"vhosts"`) || !strings.Contains(all, "ctl-defs") {
			t.Fatalf("export -: %.300s", all)
		}
		in := `{"vhosts":[{"name":"ctl-imported"}],"queues":[{"name":"iq","vhost":"ctl-imported","durable":true,"auto_delete":false,"arguments":{}}]}`
		s.ctlIn(t, in, "import", "-").ok(t)
		if s.queueMessages(t, "ctl-imported", "iq") != 0 {
			t.Fatal("import - did not declare the queue")
		}
		s.ctlIn(t, "{not json", "import", "-").exit(t, exitUsage)
		s.ctl(t, "import", filepath.Join(t.TempDir(), "missing.json")).exit(t, exitUsage)
		s.ctlIn(t, `{"queues":[{"name":"bad","vhost":"ctl-no-such-vhost","durable":true}]}`, "import", "-").exit(t, exitRejected)

		// A RabbitMQ user (a sha256 hash Tern cannot verify) is imported
		// unable to log in: the person importing is told, on stderr, not
		// only the server's log; --fail-on-warnings exits 6, the import
		// applied all the same.
		rabbitUser := func(name string) string {
			return `{"users":[{"name":"` + name + `","password_hash":"6PZ3RkkJGBBVAqxCNZX0Q8bdUSsdVVPoJz2qlxtDNMCTrx2W",` +
				`"hashing_algorithm":"rabbit_password_hashing_sha256","tags":[]}]}`
		}
		r := s.ctlIn(t, rabbitUser("ctl-rabbit1"), "import", "-").ok(t)
		if !strings.Contains(r.stderr, "warning: user 'ctl-rabbit1' was imported without a password") ||
			!strings.Contains(r.stdout, "with 1 warning(s)") {
			t.Fatalf("import of a RabbitMQ user: stdout %q stderr %q", r.stdout, r.stderr)
		}
		r = s.ctlIn(t, rabbitUser("ctl-rabbit2"), "import", "-", "--fail-on-warnings").exit(t, exitWarnings)
		if !strings.Contains(r.stderr, "ctl-rabbit2") || s.api(t, "/api/users/ctl-rabbit2", nil) != 200 {
			t.Fatalf("--fail-on-warnings: stderr %q, or the user was not imported", r.stderr)
		}
	})

	t.Run("status", func(t *testing.T) {
		t.Parallel()
		out := s.ctl(t, "status").ok(t).stdout
		for _, want := range []string{"node", "version", "process   pid", "listener", "amqp on 127.0.0.1", "queues", "rates", "alarms    none"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		var st struct {
			Overview map[string]any `json:"overview"`
			Node     map[string]any `json:"node"`
			Alarms   map[string]any `json:"alarms"`
		}
		if err := json.Unmarshal([]byte(s.ctl(t, "status", "--json").ok(t).stdout), &st); err != nil || st.Alarms["status"] != "ok" ||
			st.Overview["node"] == nil || st.Node["os_pid"] == nil {
			t.Fatalf("status --json: %v %+v", err, st)
		}
		// A monitoring user may read the status and lists.
		s.ctlAs(t, "watcher", ctlWatcherPass, "", "status").ok(t)
		s.ctlAs(t, "watcher", ctlWatcherPass, "", "list", "nodes").ok(t)
	})

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		// A monitoring user changes objects as its vhost permissions
		// allow (watcher has "/"'s), but policies are a policymaker's.
		s.ctlAs(t, "watcher", ctlWatcherPass, "", "declare", "queue", "ctl-watchers").ok(t)
		r := s.ctlAs(t, "watcher", ctlWatcherPass, "", "set-policy", "ctl-watchers", "^ctl-watchers$", `{"max-length": 1}`).exit(t, exitRefused)
		if !strings.Contains(r.stderr, "403") {
			t.Errorf("stderr: %s", r.stderr)
		}
		s.ctlAs(t, "watcher", ctlWatcherPass, "", "list", "users").exit(t, exitRefused) // users are an administrator's
		s.ctlAs(t, "admin", "wrong", "", "list", "queues").exit(t, exitRefused)
		// Without a password source a user other than guest is a usage error, before any request.
		r = runCtlBinary(t, []string{"TERN_CTL_PASSWORD="}, "", "ctl", "--url", s.httpURL, "--user", "admin", "list", "queues")
		r.exit(t, exitRefused) // an empty TERN_CTL_PASSWORD is a (wrong) password
		env := []string{}
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "TERN_CTL_PASSWORD=") {
				env = append(env, e)
			}
		}
		cmd := runCtlBinaryEnv(t, env, "ctl", "--url", s.httpURL, "--user", "admin", "list", "queues")
		cmd.exit(t, exitUsage)
		// --password-file before the command, and --password with its warning.
		pw := filepath.Join(t.TempDir(), "pw")
		_ = os.WriteFile(pw, []byte(ctlAdminPass+"\n"), 0o600)
		runCtlBinaryEnv(t, env, "ctl", "--url", s.httpURL, "--user", "admin", "--password-file", pw, "list", "vhosts").ok(t)
		r = runCtlBinaryEnv(t, env, "ctl", "--url", s.httpURL, "--user", "admin", "--password", ctlAdminPass, "list", "vhosts").ok(t)
		if !strings.Contains(r.stderr, "visible") {
			t.Errorf("--password without a warning: %q", r.stderr)
		}
	})
}

// runCtlBinaryEnv runs tern with exactly env.
func runCtlBinaryEnv(t *testing.T, env []string, args ...string) ctlResult {
	t.Helper()
	return runCtlBinaryWith(t, env, args...)
}

// TestCtlWithoutServer: usage errors, help, and an unreachable server.
func TestCtlWithoutServer(t *testing.T) {
	t.Parallel()
	run := func(args ...string) ctlResult {
		return runCtlBinary(t, []string{"TERN_CTL_PASSWORD=x"}, "", append([]string{"ctl"}, args...)...)
	}
	help := run("--help").ok(t).stdout
	for _, c := range ctlCommands {
		if !strings.Contains(help, "  "+c.name) {
			t.Errorf("tern ctl --help lacks %s", c.name)
		}
		out := run(c.name, "--help").ok(t).stdout
		if !strings.Contains(out, "Usage: tern ctl "+c.name) || !strings.Contains(out, "Exit codes") {
			t.Errorf("tern ctl %s --help:\n%s", c.name, out)
		}
	}
	for _, want := range []string{"Exit codes", "TERN_CTL_PASSWORD", "--url", "--vhost"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	run().exit(t, exitUsage)
	run("frobnicate").exit(t, exitUsage)
	run("list").exit(t, exitUsage)
	run("list", "bananas").exit(t, exitUsage)
	run("list", "queues", "--no-such-flag").exit(t, exitUsage)
	run("declare", "queue", "q", "--arguments", "[1]").exit(t, exitUsage)
	run("declare", "binding", "--source", "x").exit(t, exitUsage)
	run("--url", "ftp://x", "list", "queues").exit(t, exitUsage)
	r := run("--url", "http://127.0.0.1:1", "list", "queues").exit(t, exitServer)
	if !strings.Contains(r.stderr, "reach") {
		t.Errorf("unreachable: %s", r.stderr)
	}
	run("--url", "https://127.0.0.1:1", "--cacert", "/no/such/ca.pem", "status").exit(t, exitUsage)
}

// TestCtlOverHTTPS: --url https://… trusts the CA given with --cacert, and
// refuses the server's certificate without it (exit 5).
func TestCtlOverHTTPS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, addrs := startTLSBinary(t, dir) // tls_binary_test.go: guest/guest, administrator
	u := "https://" + addrs["HTTPS"]
	env := []string{"TERN_CTL_PASSWORD=guest"}
	r := runCtlBinary(t, env, "", "ctl", "--url", u, "--cacert", filepath.Join(dir, "ca.pem"), "declare", "queue", "over-tls").ok(t)
	if !strings.Contains(r.stdout, "over-tls") {
		t.Fatalf("declare over https: %s", r.stdout)
	}
	rows := runCtlBinary(t, env, "", "ctl", "--url", u, "--cacert", filepath.Join(dir, "ca.pem"), "list", "queues", "--json").ok(t).rows(t)
	if !hasRow(rows, map[string]any{"name": "over-tls"}) {
		t.Fatalf("list over https: %v", rows)
	}
	r = runCtlBinary(t, env, "", "ctl", "--url", u, "status").exit(t, exitServer)
	if !strings.Contains(r.stderr, "certificate") {
		t.Errorf("unknown CA: %s", r.stderr)
	}
}

// TestCtlDocumented: docs/ctl.md shows every command with an example and
// the exit codes.
func TestCtlDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "ctl.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, c := range ctlCommands {
		if !strings.Contains(doc, "tern ctl "+c.name+" ") && !strings.Contains(doc, "tern ctl "+c.name+"\n") {
			t.Errorf("docs/ctl.md has no example of tern ctl %s", c.name)
		}
	}
	for k := range listKinds {
		if !strings.Contains(doc, "tern ctl list "+k) {
			t.Errorf("docs/ctl.md has no example of tern ctl list %s", k)
		}
	}
	for _, code := range []string{"| 0 ", "| 1 ", "| 2 ", "| 3 ", "| 4 ", "| 5 "} {
		if !strings.Contains(doc, code) {
			t.Errorf("docs/ctl.md's exit code table lacks %q", code)
		}
	}
	readme, _ := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if !strings.Contains(string(readme), "docs/ctl.md") {
		t.Error("README does not point to docs/ctl.md")
	}
}

// TestCtlStatusUnderAlarm: status exits 5 and names the alarm while the
// disk alarm is on (a free-space limit no disk meets).
func TestCtlStatusUnderAlarm(t *testing.T) {
	t.Parallel()
	s := startBinary(t, "--config", writeConfig(t, "disk_free_limit = \"1000000GiB\"\n"))
	var httpURL string
	deadline := time.After(30 * time.Second)
	for httpURL == "" {
		select {
		case line := <-s.logs:
			if m := httpListenLine.FindStringSubmatch(line); m != nil {
				httpURL = "http://" + m[1]
			}
		case <-deadline:
			t.Fatal("no HTTP address in the log")
		}
	}
	var r ctlResult
	eventually(t, "status failing on the disk alarm", func() bool {
		r = runCtlBinary(t, []string{"TERN_CTL_PASSWORD=guest"}, "", "ctl", "--url", httpURL, "status")
		return r.code == exitServer
	})
	if !strings.Contains(r.stderr, "disk") || !strings.Contains(r.stdout, "alarms") || strings.Contains(r.stdout, "alarms    none") {
		t.Fatalf("status under the disk alarm:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}
