package mgmt_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

// The users of the authorization table: one per management tag, and one
// without tags. Their permissions in "/" are set through the API in the
// test: admin has none in "other" and is not held by that.
func withTagUsers(c *config.Config) {
	c.Users = []config.User{
		{Name: "guest", Password: "guest", VHosts: []string{"*"}, Tags: []string{"administrator"}},
		{Name: "admin", Password: "adminpw", VHosts: []string{}, Tags: []string{"administrator"}},
		{Name: "mon", Password: "monpw", VHosts: []string{}, Tags: []string{"monitoring"}},
		{Name: "pm", Password: "pmpw", VHosts: []string{}, Tags: []string{"policymaker"}},
		{Name: "mg", Password: "mgpw", VHosts: []string{}, Tags: []string{"management"}},
		{Name: "none", Password: "nonepw", VHosts: []string{"*"}},
	}
}

var tagPasswords = map[string]string{"admin": "adminpw", "mon": "monpw", "pm": "pmpw", "mg": "mgpw", "none": "nonepw"}

// TestAuthorizationPerTag is the table of RabbitMQ's management
// authorization (docs/http-api.md, "Authorization"): tag × endpoint ×
// vhost → status. Rows run in order; a write row's object is created for
// it by an earlier row or the set-up.
func TestAuthorizationPerTag(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withTagUsers)
	guest(t, s, "PUT", "/api/vhosts/other", nil, http.StatusCreated)
	perm := func(user, vhost, conf, write, read string) { setPermission(t, s, user, vhost, conf, write, read) }
	perm("mg", "/", `^mg\.`, `^(mg\..*|amq\.default|amq\.topic)$`, `^(mg\..*|amq\.direct|amq\.topic)$`)
	perm("mon", "/", `^mon\.`, `^mon\.`, `^mon\.`)
	perm("pm", "/", ".*", ".*", ".*")
	guest(t, s, "PUT", "/api/topic-permissions/%2F/mg", map[string]string{"exchange": "amq.topic", "write": `^mg\.`, "read": `^mg\.`}, http.StatusCreated)
	for _, q := range []string{"/api/queues/%2F/mg.q", "/api/queues/%2F/mg.gone", "/api/queues/%2F/private.q", "/api/queues/other/o.q", "/api/queues/%2F/pm.q"} {
		guest(t, s, "PUT", q, map[string]any{"durable": false}, http.StatusCreated)
	}
	guest(t, s, "PUT", "/api/exchanges/%2F/mg.gone.x", map[string]any{"type": "fanout"}, http.StatusCreated)
	guest(t, s, "PUT", "/api/policies/%2F/pm-existing", map[string]any{"pattern": "^nothing$", "definition": map[string]any{"max-length": 5}}, http.StatusCreated)
	guest(t, s, "PUT", "/api/policies/other/other-pol", map[string]any{"pattern": "^nothing$", "definition": map[string]any{"max-length": 5}}, http.StatusCreated)

	pub := func(key string) map[string]any {
		return map[string]any{"routing_key": key, "payload": "x", "payload_encoding": "string", "properties": map[string]any{}}
	}
	get := map[string]any{"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
	pol := map[string]any{"pattern": "^zz$", "definition": map[string]any{"max-length": 1}}
	q := map[string]any{"durable": false}
	const (
		ok = http.StatusOK
		cr = http.StatusCreated
		nc = http.StatusNoContent
		no = http.StatusForbidden
		nf = http.StatusNotFound
	)
	type row struct {
		method, path string
		body         any
		want         map[string]int // user → status
	}
	all := func(code int) map[string]int {
		return map[string]int{"admin": code, "mon": code, "pm": code, "mg": code, "none": no}
	}
	for _, tc := range []row{
		// Reading: any tag; node data for monitoring; other vhosts for monitoring.
		{"GET", "/api/overview", nil, all(ok)},
		{"GET", "/api/whoami", nil, all(ok)},
		{"GET", "/api/queues", nil, all(ok)},
		{"GET", "/api/queues?page=1", nil, all(ok)},
		{"GET", "/api/connections", nil, all(ok)},
		{"GET", "/api/health/checks/alarms", nil, all(ok)},
		{"GET", "/api/limits", nil, all(ok)},
		{"GET", "/api/vhosts", nil, all(ok)},
		{"GET", "/api/queues/%2F/private.q", nil, map[string]int{"admin": ok, "mon": ok, "pm": ok, "mg": ok, "none": no}},
		{"GET", "/api/queues/other", nil, map[string]int{"admin": ok, "mon": ok, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/queues/other/o.q", nil, map[string]int{"admin": ok, "mon": ok, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/exchanges/other", nil, map[string]int{"admin": ok, "mon": ok, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/vhosts/other", nil, map[string]int{"admin": ok, "mon": ok, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/nodes", nil, map[string]int{"admin": ok, "mon": ok, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/policies", nil, map[string]int{"admin": ok, "mon": no, "pm": ok, "mg": no, "none": no}},
		{"GET", "/api/policies/%2F/pm-existing", nil, map[string]int{"admin": ok, "mon": no, "pm": ok, "mg": no, "none": no}},
		{"GET", "/api/policies/other", nil, map[string]int{"admin": ok, "mon": no, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/operator-policies", nil, map[string]int{"admin": ok, "mon": no, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/users", nil, map[string]int{"admin": ok, "mon": no, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/permissions", nil, map[string]int{"admin": ok, "mon": no, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/definitions", nil, map[string]int{"admin": ok, "mon": no, "pm": no, "mg": no, "none": no}},
		{"GET", "/api/nosuchvhost-unknown", nil, map[string]int{"admin": nf, "mon": nf, "pm": nf, "mg": nf, "none": no}},
		{"GET", "/api/queues/nosuchvhost", nil, map[string]int{"admin": nf, "mon": nf, "pm": nf, "mg": nf, "none": no}},

		// Queues: configure to declare and delete, read to purge and get.
		{"PUT", "/api/queues/%2F/mg.new", q, map[string]int{"mon": no, "none": no, "mg": cr, "pm": nc, "admin": nc}},
		{"PUT", "/api/queues/%2F/mon.new", q, map[string]int{"mg": no, "none": no, "mon": cr}},
		{"PUT", "/api/queues/%2F/x.new", q, map[string]int{"mg": no, "mon": no, "none": no, "pm": cr, "admin": nc}},
		{"PUT", "/api/queues/other/mg.new", q, map[string]int{"mg": no, "pm": no, "mon": no, "none": no, "admin": cr}},
		{"DELETE", "/api/queues/%2F/private.q/contents", nil, map[string]int{"mg": no, "mon": no, "none": no, "pm": nc, "admin": nc}},
		{"DELETE", "/api/queues/%2F/mg.q/contents", nil, map[string]int{"mon": no, "none": no, "mg": nc}},
		{"POST", "/api/queues/%2F/mg.q/get", get, map[string]int{"mon": no, "none": no, "mg": ok, "pm": ok}},
		{"POST", "/api/queues/%2F/private.q/get", get, map[string]int{"mg": no, "mon": no, "none": no, "admin": ok}},
		{"DELETE", "/api/queues/%2F/private.q", nil, map[string]int{"mg": no, "mon": no, "none": no}},
		{"DELETE", "/api/queues/%2F/mg.gone", nil, map[string]int{"mon": no, "none": no, "mg": nc, "pm": nf}},
		{"DELETE", "/api/queues/other/o.q", nil, map[string]int{"mg": no, "pm": no, "mon": no, "none": no, "admin": nc}},

		// Exchanges: configure to declare and delete, write to publish
		// (and the topic permission on a topic exchange).
		{"PUT", "/api/exchanges/%2F/mg.x", map[string]any{"type": "direct"}, map[string]int{"mon": no, "none": no, "mg": cr, "pm": nc}},
		{"PUT", "/api/exchanges/%2F/x.x", map[string]any{"type": "direct"}, map[string]int{"mg": no, "mon": no, "none": no, "admin": cr}},
		{"DELETE", "/api/exchanges/%2F/mg.gone.x", nil, map[string]int{"mon": no, "none": no, "mg": nc}},
		{"DELETE", "/api/exchanges/%2F/x.x", nil, map[string]int{"mg": no, "mon": no, "none": no, "pm": nc}},
		{"POST", "/api/exchanges/%2F/amq.default/publish", pub("mg.q"), map[string]int{"mon": no, "none": no, "mg": ok, "pm": ok, "admin": ok}},
		{"POST", "/api/exchanges/%2F/amq.direct/publish", pub("mg.q"), map[string]int{"mg": no, "mon": no, "none": no, "pm": ok}},
		{"POST", "/api/exchanges/%2F/amq.topic/publish", pub("mg.key"), map[string]int{"mon": no, "none": no, "mg": ok}},
		{"POST", "/api/exchanges/%2F/amq.topic/publish", pub("other.key"), map[string]int{"mg": no, "mon": no, "none": no, "admin": ok}},

		// Bindings: write on the destination, read on the source.
		{"POST", "/api/bindings/%2F/e/amq.direct/q/mg.q", map[string]any{"routing_key": "k"}, map[string]int{"mon": no, "none": no, "mg": cr}},
		{"DELETE", "/api/bindings/%2F/e/amq.direct/q/mg.q/k", nil, map[string]int{"mon": no, "none": no, "mg": nc}},
		{"POST", "/api/bindings/%2F/e/amq.fanout/q/mg.q", map[string]any{"routing_key": "k"}, map[string]int{"mg": no, "mon": no, "none": no, "pm": cr}},
		{"DELETE", "/api/bindings/%2F/e/amq.fanout/q/mg.q/k", nil, map[string]int{"mg": no, "mon": no, "none": no, "pm": nc}},
		{"POST", "/api/bindings/%2F/e/amq.direct/q/private.q", map[string]any{"routing_key": "k"}, map[string]int{"mg": no, "mon": no, "none": no}},
		{"POST", "/api/bindings/%2F/e/amq.topic/q/mg.q", map[string]any{"routing_key": "nope.k"}, map[string]int{"mg": no, "mon": no, "none": no}},
		{"POST", "/api/bindings/%2F/e/amq.topic/q/mg.q", map[string]any{"routing_key": "mg.k"}, map[string]int{"mon": no, "none": no, "mg": cr}},

		// Policies: policymakers in their vhosts; operator policies: administrators.
		{"PUT", "/api/policies/%2F/pm-new", pol, map[string]int{"mg": no, "mon": no, "none": no, "pm": cr, "admin": nc}},
		{"PUT", "/api/policies/other/pm-new", pol, map[string]int{"mg": no, "mon": no, "none": no, "pm": no, "admin": cr}},
		{"DELETE", "/api/policies/%2F/pm-new", nil, map[string]int{"mg": no, "mon": no, "none": no, "pm": nc, "admin": nf}},
		{"PUT", "/api/operator-policies/%2F/op", pol, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": cr}},

		// Administrators only.
		{"PUT", "/api/vhosts/newv", nil, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": cr}},
		{"PUT", "/api/users/newu", map[string]any{"password": "x", "tags": ""}, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": cr}},
		{"PUT", "/api/permissions/%2F/newu", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": cr}},
		{"POST", "/api/definitions", map[string]any{}, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": nc}},
		{"PUT", "/api/limits", []any{}, map[string]int{"mg": no, "mon": no, "pm": no, "none": no, "admin": ok}},
	} {
		// Users in a fixed order: the refusals first, so that a row's
		// object is still there for the user expected to change it.
		users := make([]string, 0, len(tc.want))
		for u := range tc.want {
			users = append(users, u)
		}
		slices.SortFunc(users, func(a, b string) int {
			if (tc.want[a] == no) != (tc.want[b] == no) {
				if tc.want[a] == no {
					return -1
				}
				return 1
			}
			return strings.Compare(order(a), order(b))
		})
		for _, u := range users {
			code, raw := apiCall(t, s, tc.method, tc.path, u, tagPasswords[u], tc.body)
			if code != tc.want[u] {
				t.Errorf("%s %s as %s: %d %s, want %d", tc.method, tc.path, u, code, raw, tc.want[u])
				continue
			}
			if code == no {
				if e, _ := errorBody(t, raw); e != "not_authorised" && e != "access_refused" {
					t.Errorf("%s %s as %s: 403 body %s is not RabbitMQ's", tc.method, tc.path, u, raw)
				}
			}
		}
	}
	if _, err := s.Broker.VHost("/").Exchange("mg.x"); err != nil {
		t.Errorf("mg's exchange was not declared: %v", err)
	}
}

// setPermission replaces user's permission in vhost (201 or 204).
func setPermission(t *testing.T, s *testkit.Server, user, vhost, conf, write, read string) {
	t.Helper()
	code, raw := apiCall(t, s, "PUT", "/api/permissions/"+pathEscape(vhost)+"/"+user, "", "",
		map[string]string{"configure": conf, "write": write, "read": read})
	if code != http.StatusCreated && code != http.StatusNoContent {
		t.Fatalf("permission of %s in %s: %d %s", user, vhost, code, raw)
	}
}

// order is the order of the users in a row with several expected
// successes: the narrower tag first, so a create is checked on the user
// whose permission is the point of the row.
func order(u string) string {
	return map[string]string{"mg": "1", "mon": "2", "pm": "3", "admin": "4", "none": "5"}[u]
}

// What a user lists is what its tag and permissions let it see: a
// management user its vhosts' queues and its own connections; a
// monitoring user every vhost and every connection, which it may not
// close; an administrator closes anyone's.
func TestListingsAndConnectionsPerTag(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withTagUsers)
	guest(t, s, "PUT", "/api/vhosts/other", nil, http.StatusCreated)
	setPermission(t, s, "mg", "/", ".*", ".*", ".*")
	guest(t, s, "PUT", "/api/queues/%2F/q1", map[string]any{}, http.StatusCreated)
	guest(t, s, "PUT", "/api/queues/other/q2", map[string]any{}, http.StatusCreated)

	names := func(user, path string) []string {
		code, raw := apiCall(t, s, "GET", path, user, tagPasswords[user], nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s as %s: %d %s", path, user, code, raw)
		}
		var items []map[string]any
		if err := json.Unmarshal(raw, &items); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			out = append(out, fmt.Sprint(it["vhost"], ":", it["name"]))
		}
		slices.Sort(out)
		return out
	}
	if got := names("mg", "/api/queues"); !slices.Equal(got, []string{"/:q1"}) {
		t.Errorf("management user's queues: %v", got)
	}
	if got := names("mon", "/api/queues"); !slices.Equal(got, []string{"/:q1", "other:q2"}) {
		t.Errorf("monitoring user's queues: %v", got)
	}
	if got := names("mg", "/api/vhosts"); !slices.Equal(got, []string{"<nil>:/"}) {
		t.Errorf("management user's vhosts: %v", got)
	}

	dial := func(user string) *amqp.Connection {
		c, err := amqp.DialConfig(strings.Replace(s.URL, "guest:guest", user+":"+tagPasswords[user], 1),
			amqp.Config{Properties: amqp.Table{"connection_name": user}})
		if err != nil {
			t.Fatalf("dial as %s: %v", user, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	setPermission(t, s, "admin", "/", ".*", ".*", ".*")
	mgConn, adminConn := dial("mg"), dial("admin")
	mgClosed, adminClosed := mgConn.NotifyClose(make(chan *amqp.Error, 1)), adminConn.NotifyClose(make(chan *amqp.Error, 1))
	conns := map[string]string{}
	testkit.Eventually(t, 5*time.Second, "both connections are listed", func() bool {
		for _, c := range getList(t, s, "/api/connections") {
			conns[c["user"].(string)] = c["name"].(string)
		}
		return len(conns) == 2
	})
	if got := names("mg", "/api/connections"); len(got) != 1 || !strings.HasSuffix(got[0], conns["mg"]) {
		t.Errorf("management user's connections: %v", got)
	}
	if got := names("mon", "/api/connections"); len(got) != 2 {
		t.Errorf("monitoring user's connections: %v", got)
	}
	del := func(user, conn string) int {
		code, _ := apiCall(t, s, "DELETE", "/api/connections/"+pathEscape(conn), user, tagPasswords[user], nil)
		return code
	}
	if code := del("mg", conns["admin"]); code != http.StatusNotFound { // not even visible to it
		t.Errorf("management user closing another's connection: %d", code)
	}
	if code := del("mon", conns["admin"]); code != http.StatusForbidden {
		t.Errorf("monitoring user closing another's connection: %d", code)
	}
	if code := del("mg", conns["mg"]); code != http.StatusNoContent {
		t.Errorf("management user closing its own connection: %d", code)
	}
	if code := del("admin", conns["admin"]); code != http.StatusNoContent {
		t.Errorf("administrator closing a connection: %d", code)
	}
	for who, ch := range map[string]chan *amqp.Error{"mg": mgClosed, "admin": adminClosed} {
		select {
		case e := <-ch:
			if e == nil || e.Code != 320 {
				t.Errorf("%s's connection: %+v", who, e)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s's connection was not closed", who)
		}
	}
}
