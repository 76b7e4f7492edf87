package mgmt_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/testkit"
)

// Pagination, filtering, sorting and columns as RabbitMQ has them.
func TestListPaginationAndSorting(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for i := range 12 {
		guest(t, s, "PUT", fmt.Sprintf("/api/queues/%%2F/q%02d", i), map[string]any{"durable": i%2 == 0}, http.StatusCreated)
	}
	guest(t, s, "PUT", "/api/queues/%2F/other", map[string]any{}, http.StatusCreated)

	var pg struct {
		FilteredCount int              `json:"filtered_count"`
		ItemCount     int              `json:"item_count"`
		Items         []map[string]any `json:"items"`
		Page          int              `json:"page"`
		PageCount     int              `json:"page_count"`
		PageSize      int              `json:"page_size"`
		TotalCount    int              `json:"total_count"`
	}
	raw := guest(t, s, "GET", "/api/queues?page=2&page_size=5&name=q&sort=name&sort_reverse=true", nil, http.StatusOK)
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	hasFields(t, "page", keys, "filtered_count", "item_count", "items", "page", "page_count", "page_size", "total_count")
	if err := json.Unmarshal(raw, &pg); err != nil {
		t.Fatal(err)
	}
	if pg.TotalCount != 13 || pg.FilteredCount != 12 || pg.ItemCount != 5 || pg.Page != 2 || pg.PageCount != 3 || pg.PageSize != 5 {
		t.Errorf("page %+v", pg)
	}
	var names []string
	for _, it := range pg.Items {
		names = append(names, it["name"].(string))
	}
	if fmt.Sprint(names) != "[q06 q05 q04 q03 q02]" {
		t.Errorf("page 2 of the reversed names: %v", names)
	}

	pg.Items = nil
	raw = guest(t, s, "GET", "/api/queues?page=1&name=%5Eq0%5B13%5D%24&use_regex=true&columns=name,durable", nil, http.StatusOK)
	if err := json.Unmarshal(raw, &pg); err != nil {
		t.Fatal(err)
	}
	if pg.FilteredCount != 2 || len(pg.Items) != 2 || len(pg.Items[0]) != 2 || pg.Items[0]["name"] != "q01" || pg.Items[0]["durable"] != false {
		t.Errorf("regex and columns: %+v", pg)
	}

	all := getList(t, s, "/api/queues?sort=durable&columns=name,durable,message_stats.publish")
	if len(all) != 13 || all[0]["durable"] != false || all[12]["durable"] != true {
		t.Errorf("sorted by durable: %v", all)
	}
	if ms, ok := all[0]["message_stats"].(map[string]any); !ok || len(ms) != 1 {
		t.Errorf("nested column kept nested: %v", all[0])
	}
	for _, bad := range []string{"page=0", "page=x", "page=1&page_size=501", "page=9", "page=1&name=(&use_regex=true"} {
		code, raw := apiCall(t, s, "GET", "/api/queues?"+bad, "", "", nil)
		if e, _ := errorBody(t, raw); code != http.StatusBadRequest || e != "bad_request" {
			t.Errorf("?%s: %d %s", bad, code, raw)
		}
	}
}

// Reads need a tag among monitoring, management, policymaker and
// administrator. A management user sees the
// vhosts it may access and its own connections.
func TestAPIAuthorizationByTag(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers)
	guest := func(method, path string, body any, want int) { // as admin
		t.Helper()
		if code, raw := apiCall(t, s, method, path, "admin", "adminpw", body); code != want {
			t.Fatalf("%s %s: %d %s", method, path, code, raw)
		}
	}
	if err := s.Broker.Apply(broker.AddVHost{Name: "private"}); err != nil {
		t.Fatal(err)
	}
	guest("PUT", "/api/queues/private/secret", map[string]any{}, http.StatusCreated)
	guest("PUT", "/api/queues/%2F/open", map[string]any{}, http.StatusCreated)

	reads := []string{"/api/overview", "/api/queues", "/api/queues/%2F/open", "/api/exchanges", "/api/bindings", "/api/connections",
		"/api/channels", "/api/consumers", "/api/nodes", "/api/whoami", "/api/definitions", "/api/health/checks/alarms"}
	for _, path := range reads {
		for _, u := range []struct {
			name, pw string
			want     int
		}{{"admin", "adminpw", 200}, {"watcher", "watcherpw", 200}, {"ops", "opspw", 200}, {"app", "apppw", 403}} {
			if path == "/api/definitions" && u.name != "admin" {
				u.want = 403 // exports carry every vhost and user: administrators only, as in RabbitMQ
			}
			if path == "/api/nodes" && u.name == "ops" {
				u.want = 403 // node data is for monitoring users (api_authz_test.go has the whole table)
			}
			if code, raw := apiCall(t, s, "GET", path, u.name, u.pw, nil); code != u.want {
				t.Errorf("GET %s as %s: %d %s, want %d", path, u.name, code, raw, u.want)
			}
		}
	}
	if code, _ := apiCall(t, s, "GET", "/api/queues", "admin", "nope", nil); code != http.StatusUnauthorized {
		t.Errorf("a wrong password: %d", code)
	}
	writes := []struct {
		method, path string
		body         any
	}{
		{"PUT", "/api/queues/%2F/new", map[string]any{}},
		{"DELETE", "/api/queues/%2F/open", nil},
		{"DELETE", "/api/queues/%2F/open/contents", nil},
		{"POST", "/api/queues/%2F/open/get", map[string]any{"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}},
		{"PUT", "/api/exchanges/%2F/x", map[string]any{"type": "direct"}},
		{"POST", "/api/exchanges/%2F/amq.direct/publish", map[string]any{"routing_key": "", "payload": "", "payload_encoding": "string"}},
		{"POST", "/api/bindings/%2F/e/amq.direct/q/open", map[string]any{}},
		{"POST", "/api/definitions", map[string]any{}},
		{"DELETE", "/api/connections/x", nil},
	}
	// A user without a management tag changes nothing; a monitoring or
	// management user changes objects as its vhost permissions allow
	// (TestAuthorizationPerTag), definitions only an administrator.
	for _, wr := range writes {
		users := []struct{ name, pw string }{{"app", "apppw"}}
		if wr.path == "/api/definitions" {
			users = append(users, struct{ name, pw string }{"watcher", "watcherpw"}, struct{ name, pw string }{"ops", "opspw"})
		}
		for _, u := range users {
			if code, raw := apiCall(t, s, wr.method, wr.path, u.name, u.pw, wr.body); code != http.StatusForbidden {
				t.Errorf("%s %s as %s: %d %s, want 403", wr.method, wr.path, u.name, code, raw)
			}
		}
	}
	if code, _ := apiCall(t, s, "GET", "/api/queues/%2F/new", "admin", "adminpw", nil); code != http.StatusNotFound {
		t.Error("a refused write changed something")
	}

	// ops (management, access to "/" only) sees "/" and not "private".
	var qs []map[string]any
	_, raw := apiCall(t, s, "GET", "/api/queues", "ops", "opspw", nil)
	if err := json.Unmarshal(raw, &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 1 || qs[0]["name"] != "open" {
		t.Errorf("ops sees queues %v", qs)
	}
	if code, raw := apiCall(t, s, "GET", "/api/queues/private", "ops", "opspw", nil); code != http.StatusForbidden {
		t.Errorf("ops lists private's queues: %d %s", code, raw)
	}
	_, raw = apiCall(t, s, "GET", "/api/queues", "watcher", "watcherpw", nil)
	if err := json.Unmarshal(raw, &qs); err != nil {
		t.Fatal(err)
	}
	if len(qs) != 2 {
		t.Errorf("monitoring sees every vhost's queues: %v", qs)
	}
	// A management user sees its own connections only.
	adminConn, err := amqp.Dial("amqp://admin:adminpw@" + s.AMQPAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	testkit.Eventually(t, 5*time.Second, "the connection is listed", func() bool {
		_, raw := apiCall(t, s, "GET", "/api/connections", "watcher", "watcherpw", nil)
		var cs []map[string]any
		_ = json.Unmarshal(raw, &cs)
		return len(cs) == 1
	})
	_, raw = apiCall(t, s, "GET", "/api/connections", "ops", "opspw", nil)
	var cs []map[string]any
	if err := json.Unmarshal(raw, &cs); err != nil || len(cs) != 0 {
		t.Errorf("ops sees others' connections: %s", raw)
	}
	var who map[string]any
	_, raw = apiCall(t, s, "GET", "/api/whoami", "watcher", "watcherpw", nil)
	if err := json.Unmarshal(raw, &who); err != nil || who["name"] != "watcher" || fmt.Sprint(who["tags"]) != "[monitoring]" {
		t.Errorf("whoami: %s", raw)
	}
}

// The health checks answer as RabbitMQ's: 200 {"status":"ok"}, or 503.
func TestHealthChecks(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, path := range []string{"/api/health/checks/alarms", "/api/health/checks/local-alarms", "/api/health/checks/virtual-hosts",
		"/api/aliveness-test/%2F"} {
		if got := getObject(t, s, path); got["status"] != "ok" {
			t.Errorf("%s: %v", path, got)
		}
	}
	_, port, err := net.SplitHostPort(s.AMQPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, s, "/api/health/checks/port-listener/"+port); got["status"] != "ok" {
		t.Errorf("the AMQP port: %v", got)
	}
	code, raw := apiCall(t, s, "GET", "/api/health/checks/port-listener/1", "", "", nil)
	if code != http.StatusServiceUnavailable {
		t.Errorf("an unused port: %d %s", code, raw)
	}
	s.Broker.MemoryAlarm().Set(true)
	defer s.Broker.MemoryAlarm().Set(false)
	code, raw = apiCall(t, s, "GET", "/api/health/checks/alarms", "", "", nil)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	if code != http.StatusServiceUnavailable || body["status"] != "failed" {
		t.Errorf("with the memory alarm: %d %s", code, raw)
	}
}
