package mgmt_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// do sends method path with a JSON body as user (none when "") and returns
// the status and body.
func do(t *testing.T, s *testkit.Server, user, pass, method, path string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.HTTPURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// must is do as admin, failing unless the status is want.
func must(t *testing.T, s *testkit.Server, method, path string, body any, want int) string {
	t.Helper()
	code, out := do(t, s, "admin", "adminpw", method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return out
}

func amqpURL(s *testkit.Server, user, pass, vhost string) string {
	return fmt.Sprintf("amqp://%s:%s@%s/%s", user, pass, s.AMQPAddr(), url.PathEscape(vhost))
}

// TestSecurityAPINeedsAnAdministrator: without credentials every users,
// vhosts and permissions endpoint answers 401; a user without the
// administrator tag may not change anything nor read users or
// permissions (403), as in RabbitMQ.
func TestSecurityAPINeedsAnAdministrator(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers)
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/users", nil},
		{"PUT", "/api/users/x", map[string]string{"password": "p"}},
		{"DELETE", "/api/users/app", nil},
		{"PUT", "/api/vhosts/x", nil},
		{"DELETE", "/api/vhosts/%2F", nil},
		{"GET", "/api/permissions", nil},
		{"PUT", "/api/permissions/%2F/app", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}},
		{"PUT", "/api/topic-permissions/%2F/app", map[string]string{"exchange": "amq.topic", "write": ".*", "read": ".*"}},
		{"PUT", "/api/vhost-limits/%2F/max-connections", map[string]int{"value": 1}},
		{"PUT", "/api/user-limits/app/max-channels", map[string]int{"value": 1}},
	} {
		if code, out := do(t, s, "", "", tc.method, tc.path, tc.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s without credentials: %d %s, want 401", tc.method, tc.path, code, out)
		}
		for _, u := range [][2]string{{"watcher", "watcherpw"}, {"ops", "opspw"}, {"app", "apppw"}} {
			if code, out := do(t, s, u[0], u[1], tc.method, tc.path, tc.body); code != http.StatusForbidden {
				t.Errorf("%s %s as %s: %d %s, want 403", tc.method, tc.path, u[0], code, out)
			}
		}
	}
	// Nothing changed.
	if _, ok := s.Users.Lookup("x"); ok {
		t.Error("user x was created")
	}
	if s.Users.UserLimit("app", "max-channels") >= 0 || s.Broker.VHost("x") != nil {
		t.Error("a refused request changed something")
	}
	// Reading vhosts is for every API user, as the other read endpoints.
	if code, out := do(t, s, "watcher", "watcherpw", "GET", "/api/vhosts", nil); code != http.StatusOK || !strings.Contains(out, `"name":"/"`) {
		t.Errorf("GET /api/vhosts as monitoring: %d %s", code, out)
	}
}

// TestUserLifecycle creates, changes and deletes a user through the API;
// no answer ever holds a password, and logins follow each change.
func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers)
	must(t, s, "PUT", "/api/users/carol", map[string]string{"password": "first-secret", "tags": "monitoring,management"}, http.StatusCreated)
	out := must(t, s, "GET", "/api/users/carol", nil, http.StatusOK)
	var u struct {
		Name             string
		PasswordHash     string `json:"password_hash"`
		HashingAlgorithm string `json:"hashing_algorithm"`
		Tags             []string
	}
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "first-secret") || !strings.HasPrefix(u.PasswordHash, "$argon2id$") || u.HashingAlgorithm != "argon2id" ||
		strings.Join(u.Tags, ",") != "monitoring,management" {
		t.Fatalf("GET user: %s", out)
	}
	if code, _ := do(t, s, "carol", "first-secret", "GET", "/api/vhosts", nil); code != http.StatusOK {
		t.Fatalf("carol cannot log in: %d", code)
	}
	// Tags alone: the password stays.
	must(t, s, "PUT", "/api/users/carol", map[string]any{"tags": []string{"monitoring"}}, http.StatusNoContent)
	if code, _ := do(t, s, "carol", "first-secret", "GET", "/api/vhosts", nil); code != http.StatusOK {
		t.Fatalf("carol lost her password on a tags change: %d", code)
	}
	// A new password: the old one stops working.
	must(t, s, "PUT", "/api/users/carol", map[string]string{"password": "second-secret", "tags": "monitoring"}, http.StatusNoContent)
	if code, _ := do(t, s, "carol", "first-secret", "GET", "/api/vhosts", nil); code != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", code)
	}
	if code, _ := do(t, s, "carol", "second-secret", "GET", "/api/vhosts", nil); code != http.StatusOK {
		t.Fatalf("new password refused: %d", code)
	}
	// A hash as RabbitMQ's API takes it: argon2id only.
	must(t, s, "PUT", "/api/users/dave", map[string]string{"password_hash": auth.HashPassword("dave-pw"), "hashing_algorithm": "argon2id", "tags": "monitoring"}, http.StatusCreated)
	if code, _ := do(t, s, "dave", "dave-pw", "GET", "/api/vhosts", nil); code != http.StatusOK {
		t.Fatalf("user made from a hash cannot log in: %d", code)
	}
	code, out := do(t, s, "admin", "adminpw", "PUT", "/api/users/erin", map[string]string{"password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR", "hashing_algorithm": "rabbit_password_hashing_sha256"})
	if code != http.StatusBadRequest || !strings.Contains(out, "argon2id") {
		t.Errorf("a SHA-256 hash: %d %s, want 400 naming argon2id", code, out)
	}
	if code, out := do(t, s, "admin", "adminpw", "PUT", "/api/users/erin", map[string]string{"tags": "x"}); code != http.StatusBadRequest {
		t.Errorf("a new user without a password: %d %s", code, out)
	}
	// The list shows no password either.
	if out := must(t, s, "GET", "/api/users", nil, http.StatusOK); strings.Contains(out, "second-secret") || !strings.Contains(out, `"name":"carol"`) {
		t.Errorf("GET /api/users: %s", out)
	}
	must(t, s, "DELETE", "/api/users/carol", nil, http.StatusNoContent)
	must(t, s, "GET", "/api/users/carol", nil, http.StatusNotFound)
	must(t, s, "DELETE", "/api/users/carol", nil, http.StatusNotFound)
	if code, _ := do(t, s, "carol", "second-secret", "GET", "/api/vhosts", nil); code != http.StatusUnauthorized {
		t.Errorf("deleted user logs in: %d", code)
	}
}

// TestInvalidPermissionsRefused: an expression that does not compile, a
// missing user or vhost, an unknown limit: 400 with the reason, nothing
// changed.
func TestInvalidPermissionsRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers)
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"/api/permissions/%2F/app", map[string]string{"configure": "(", "write": ".*", "read": ".*"}, "invalid regular expression"},
		{"/api/permissions/%2F/app", map[string]string{"configure": ".*", "write": "[a-", "read": ".*"}, "invalid regular expression"},
		{"/api/permissions/%2F/app", map[string]string{"configure": ".*", "write": ".*", "read": "(?=x)"}, "invalid regular expression"},
		{"/api/topic-permissions/%2F/app", map[string]string{"exchange": "amq.topic", "write": "^{username}(", "read": ".*"}, "invalid regular expression"},
		{"/api/topic-permissions/%2F/app", map[string]string{"write": ".*", "read": ".*"}, "exchange is required"},
		{"/api/permissions/%2F/nobody", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, "no user 'nobody'"},
		{"/api/permissions/nohost/app", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, "no vhost 'nohost'"},
		{"/api/vhost-limits/%2F/max-bananas", map[string]int{"value": 1}, "unknown vhost limit"},
		{"/api/user-limits/app/max-connections", map[string]string{"value": "x"}, "field 'value' must be a number"},
	} {
		code, out := do(t, s, "admin", "adminpw", "PUT", tc.path, tc.body)
		var e struct{ Error, Reason string }
		_ = json.Unmarshal([]byte(out), &e)
		if code != http.StatusBadRequest || e.Error != "bad_request" || !strings.Contains(e.Reason, tc.want) {
			t.Errorf("PUT %s %v: %d %s, want 400 with %q", tc.path, tc.body, code, out, tc.want)
		}
	}
	if g := s.Users.Grant("app", "/"); g == nil || g.Configure != ".*" {
		t.Errorf("app's permission changed: %+v", g)
	}
}

// TestVHostLifecycle: a vhost made through the API takes connections and
// queues; deleting it closes its connections and deletes its queues and
// permissions.
func TestVHostLifecycle(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers)
	must(t, s, "PUT", "/api/vhosts/shop", map[string]string{"description": "x"}, http.StatusCreated)
	must(t, s, "PUT", "/api/vhosts/shop", nil, http.StatusNoContent)
	must(t, s, "GET", "/api/vhosts/shop", nil, http.StatusOK)
	// The creator (admin) already has full permissions there, as in
	// RabbitMQ: setting them again is a change (204).
	must(t, s, "PUT", "/api/permissions/shop/admin", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusNoContent)
	conn, err := amqp.Dial(amqpURL(s, "admin", "adminpw", "shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("orders", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	must(t, s, "DELETE", "/api/vhosts/shop", nil, http.StatusNoContent)
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("connection closed with %v, want 320 CONNECTION_FORCED", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the vhost's connection stayed open")
	}
	must(t, s, "GET", "/api/vhosts/shop", nil, http.StatusNotFound)
	if s.Users.Grant("admin", "shop") != nil {
		t.Error("the deleted vhost's permission stayed")
	}
	if _, err := amqp.Dial(amqpURL(s, "admin", "adminpw", "shop")); err == nil {
		t.Error("connected to a deleted vhost")
	}
	// Made again, it is empty.
	must(t, s, "PUT", "/api/vhosts/shop", nil, http.StatusCreated)
	if v := s.Broker.VHost("shop"); v == nil || len(v.Queues()) != 0 {
		t.Errorf("the recreated vhost holds the old queues")
	}
}

// TestSecuritySurvivesRestart: users, permissions, topic permissions,
// limits and a deleted vhost made through the API are as they were after
// a restart; the configuration does not seed again (a deleted configured
// user stays deleted, a changed password stays changed).
func TestSecuritySurvivesRestart(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers, func(c *config.Config) { c.VHosts = []string{"old"} })
	must(t, s, "PUT", "/api/users/frank", map[string]string{"password": "frank-pw", "tags": "monitoring"}, http.StatusCreated)
	must(t, s, "PUT", "/api/users/app", map[string]string{"password": "new-app-pw"}, http.StatusNoContent)
	must(t, s, "DELETE", "/api/users/ops", nil, http.StatusNoContent)
	must(t, s, "PUT", "/api/permissions/%2F/frank", map[string]string{"configure": "^f-", "write": "^f-", "read": ""}, http.StatusCreated)
	must(t, s, "PUT", "/api/topic-permissions/%2F/frank", map[string]string{"exchange": "amq.topic", "write": "^{username}\\.", "read": ".*"}, http.StatusCreated)
	must(t, s, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]int{"value": 7}, http.StatusNoContent)
	must(t, s, "PUT", "/api/user-limits/frank/max-connections", map[string]int{"value": 3}, http.StatusNoContent)
	must(t, s, "PUT", "/api/vhosts/extra", nil, http.StatusCreated)
	must(t, s, "DELETE", "/api/vhosts/old", nil, http.StatusNoContent)

	check := func(s *testkit.Server, when string) {
		t.Helper()
		if code, _ := do(t, s, "frank", "frank-pw", "GET", "/api/vhosts", nil); code != http.StatusOK {
			t.Errorf("%s: frank cannot log in: %d", when, code)
		}
		if code, _ := do(t, s, "app", "apppw", "GET", "/api/vhosts", nil); code != http.StatusUnauthorized {
			t.Errorf("%s: app's old password works: %d", when, code)
		}
		if _, ok := s.Users.Lookup("ops"); ok {
			t.Errorf("%s: deleted user ops is back", when)
		}
		if g := s.Users.Grant("frank", "/"); g == nil || g.Configure != "^f-" || g.Read != "" {
			t.Errorf("%s: frank's permission: %+v", when, g)
		}
		if tp := s.Users.TopicPermissions(); len(tp) != 1 || tp[0].Write != "^{username}\\." {
			t.Errorf("%s: topic permissions %+v", when, tp)
		}
		if s.Users.VHostLimit("/", "max-queues") != 7 || s.Users.UserLimit("frank", "max-connections") != 3 {
			t.Errorf("%s: limits lost", when)
		}
		if s.Broker.VHost("extra") == nil {
			t.Errorf("%s: vhost extra lost", when)
		}
	}
	check(s, "before the restart")
	s2 := s.Restart(t)
	check(s2, "after a restart")
	if s2.Broker.VHost("old") == nil || s2.Users.Grant("admin", "old") == nil {
		// A vhost in the configuration is made again at start, as it
		// always was, with the permissions of the configured users
		// that list it ("*").
		t.Error("configured vhost old was not made again with admin's permission")
	}
	s3 := s2.Restart(t)
	check(s3, "after a second restart (from the snapshot)")
}
