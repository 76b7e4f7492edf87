package mgmt_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/tern-broker/tern/internal/testkit"
)

// PUT declares a queue (201, then 204 when it exists), with its
// arguments, durable by default; a different declaration is 400; DELETE
// honours if-empty and if-unused.
func TestQueueDeclareAndDelete(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/jobs", map[string]any{"auto_delete": false, "arguments": map[string]any{"x-max-length": 10, "x-message-ttl": 60000}}, http.StatusCreated)
	guest(t, s, "PUT", "/api/queues/%2F/jobs", map[string]any{"arguments": map[string]any{"x-max-length": 10, "x-message-ttl": 60000}}, http.StatusNoContent)
	q := getObject(t, s, "/api/queues/%2F/jobs")
	if q["durable"] != true || q["arguments"].(map[string]any)["x-max-length"] != 10.0 {
		t.Fatalf("declared queue %v", q)
	}
	// The declared arguments apply: x-max-length 10 keeps 10 of 12.
	_, ch := s.Channel(t)
	for range 12 {
		if err := ch.Publish("", "jobs", false, false, amqp.Publishing{Body: []byte("j")}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "x-max-length applied", func() bool {
		return getObject(t, s, "/api/queues/%2F/jobs")["messages"] == 10.0
	})
	code, raw := apiCall(t, s, "PUT", "/api/queues/%2F/jobs", "", "", map[string]any{"durable": false})
	if e, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "inequivalent arg 'durable'") {
		t.Errorf("inequivalent declare: %d %s %s", code, e, r)
	}
	code, raw = apiCall(t, s, "PUT", "/api/queues/%2F/bad", "", "", map[string]any{"arguments": map[string]any{"x-max-length": "ten"}})
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || r == "" {
		t.Errorf("bad argument: %d %s", code, raw)
	}
	code, _ = apiCall(t, s, "PUT", "/api/queues/%2F/amq.mine", "", "", map[string]any{})
	if code != http.StatusForbidden {
		t.Errorf("reserved name: %d", code)
	}
	code, raw = apiCall(t, s, "DELETE", "/api/queues/%2F/jobs?if-empty=true", "", "", nil)
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "not empty") {
		t.Errorf("if-empty on a queue of 10: %d %s", code, raw)
	}
	guest(t, s, "DELETE", "/api/queues/%2F/jobs/contents", nil, http.StatusNoContent)
	if n := getObject(t, s, "/api/queues/%2F/jobs")["messages"]; n != 0.0 {
		t.Errorf("after purge: %v messages", n)
	}
	msgs, err := ch.Consume("jobs", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = msgs
	testkit.Eventually(t, 5*time.Second, "consumer listed", func() bool {
		return getObject(t, s, "/api/queues/%2F/jobs")["consumers"] == 1.0
	})
	code, raw = apiCall(t, s, "DELETE", "/api/queues/%2F/jobs?if-unused=true", "", "", nil)
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "in use") {
		t.Errorf("if-unused on a consumed queue: %d %s", code, raw)
	}
	guest(t, s, "DELETE", "/api/queues/%2F/jobs?if-empty=true", nil, http.StatusNoContent)
	guest(t, s, "GET", "/api/queues/%2F/jobs", nil, http.StatusNotFound)
	guest(t, s, "DELETE", "/api/queues/%2F/jobs", nil, http.StatusNotFound)
}

// PUT and DELETE exchanges; bindings created by POST, listed with their
// properties_key and deleted by it; publish says whether it routed.
func TestExchangesBindingsAndPublish(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/exchanges/%2F/logs", map[string]any{"type": "topic", "durable": true}, http.StatusCreated)
	guest(t, s, "PUT", "/api/exchanges/%2F/logs", map[string]any{"type": "topic"}, http.StatusNoContent)
	code, raw := apiCall(t, s, "PUT", "/api/exchanges/%2F/logs", "", "", map[string]any{"type": "fanout"})
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "inequivalent arg 'type'") {
		t.Errorf("inequivalent exchange: %d %s", code, raw)
	}
	code, raw = apiCall(t, s, "PUT", "/api/exchanges/%2F/nope", "", "", map[string]any{"type": "bogus"})
	if code != http.StatusBadRequest {
		t.Errorf("unknown type: %d %s", code, raw)
	}
	code, _ = apiCall(t, s, "PUT", "/api/exchanges/%2F/untyped", "", "", map[string]any{})
	if code != http.StatusBadRequest {
		t.Errorf("no type: %d", code)
	}
	guest(t, s, "PUT", "/api/exchanges/%2F/audit", map[string]any{"type": "fanout"}, http.StatusCreated)
	guest(t, s, "PUT", "/api/queues/%2F/errors", map[string]any{}, http.StatusCreated)

	// publish before any binding: not routed
	out := guest(t, s, "POST", "/api/exchanges/%2F/logs/publish", map[string]any{"properties": map[string]any{},
		"routing_key": "app.error", "payload": "boom", "payload_encoding": "string"}, http.StatusOK)
	if string(out) != `{"routed":false}`+"\n" {
		t.Errorf("unrouted publish: %s", out)
	}
	req := map[string]any{"routing_key": "app.error", "arguments": map[string]any{"x-note": "kept"}}
	code, raw = apiCall(t, s, "POST", "/api/bindings/%2F/e/logs/q/errors", "", "", req)
	if code != http.StatusCreated {
		t.Fatalf("bind: %d %s", code, raw)
	}
	guest(t, s, "POST", "/api/bindings/%2F/e/logs/e/audit", map[string]any{"routing_key": "#"}, http.StatusCreated)
	bs := getList(t, s, "/api/bindings/%2F/e/logs/q/errors")
	if len(bs) != 1 || bs[0]["arguments"].(map[string]any)["x-note"] != "kept" {
		t.Fatalf("binding %v", bs)
	}
	props := bs[0]["properties_key"].(string)
	getObject(t, s, "/api/bindings/%2F/e/logs/q/errors/"+pathEscape(props))
	if got := getList(t, s, "/api/exchanges/%2F/audit/bindings/destination"); len(got) != 1 {
		t.Errorf("audit's inbound bindings: %v", got)
	}

	out = guest(t, s, "POST", "/api/exchanges/%2F/logs/publish", map[string]any{
		"properties":  map[string]any{"content_type": "text/plain", "delivery_mode": 2, "headers": map[string]any{"n": 1}, "message_id": "m1"},
		"routing_key": "app.error", "payload": "Ym9vbQ==", "payload_encoding": "base64"}, http.StatusOK)
	if string(out) != `{"routed":true}`+"\n" {
		t.Errorf("routed publish: %s", out)
	}

	// get with ack_requeue_true leaves the message, marked redelivered
	var got []map[string]any
	getReq := map[string]any{"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 2}
	if err := json.Unmarshal(guest(t, s, "POST", "/api/queues/%2F/errors/get", getReq, http.StatusOK), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("get: %v", got)
	}
	m := got[0]
	hasFields(t, "got message", m, "payload", "payload_bytes", "payload_encoding", "redelivered", "exchange", "routing_key", "message_count", "properties")
	p := m["properties"].(map[string]any)
	if m["payload"] != "bo" || m["payload_bytes"] != 4.0 || m["payload_encoding"] != "string" || m["exchange"] != "logs" ||
		m["routing_key"] != "app.error" || p["content_type"] != "text/plain" || p["delivery_mode"] != 2.0 || p["message_id"] != "m1" ||
		p["headers"].(map[string]any)["n"] != 1.0 {
		t.Errorf("got %v", m)
	}
	getReq = map[string]any{"count": 5, "ackmode": "ack_requeue_false", "encoding": "base64"}
	if err := json.Unmarshal(guest(t, s, "POST", "/api/queues/%2F/errors/get", getReq, http.StatusOK), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["redelivered"] != true || got[0]["payload"] != "Ym9vbQ==" || got[0]["payload_encoding"] != "base64" {
		t.Errorf("second get: %v", got)
	}
	if n := getObject(t, s, "/api/queues/%2F/errors")["messages"]; n != 0.0 {
		t.Errorf("after ack_requeue_false: %v messages", n)
	}
	for _, bad := range []map[string]any{
		{"count": 1, "encoding": "auto"},
		{"count": 1, "ackmode": "nope", "encoding": "auto"},
		{"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"},
		{"count": "one", "ackmode": "ack_requeue_true", "encoding": "auto"},
	} {
		if code, raw := apiCall(t, s, "POST", "/api/queues/%2F/errors/get", "", "", bad); code != http.StatusBadRequest {
			t.Errorf("get %v: %d %s", bad, code, raw)
		}
	}
	for _, bad := range []map[string]any{
		{"routing_key": "k", "payload": "x"},
		{"routing_key": "k", "payload": "x", "payload_encoding": "rot13"},
		{"routing_key": "k", "payload": "!!", "payload_encoding": "base64"},
		{"routing_key": "k", "payload": "x", "payload_encoding": "string", "properties": map[string]any{"delivery_mode": "2"}},
	} {
		if code, raw := apiCall(t, s, "POST", "/api/exchanges/%2F/logs/publish", "", "", bad); code != http.StatusBadRequest {
			t.Errorf("publish %v: %d %s", bad, code, raw)
		}
	}

	code, raw = apiCall(t, s, "DELETE", "/api/exchanges/%2F/logs?if-unused=true", "", "", nil)
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "in use") {
		t.Errorf("if-unused on a bound exchange: %d %s", code, raw)
	}
	guest(t, s, "DELETE", "/api/bindings/%2F/e/logs/q/errors/"+pathEscape(props), nil, http.StatusNoContent)
	guest(t, s, "DELETE", "/api/bindings/%2F/e/logs/q/errors/"+pathEscape(props), nil, http.StatusNotFound)
	if got := getList(t, s, "/api/bindings/%2F/e/logs/q/errors"); len(got) != 0 {
		t.Errorf("after unbinding: %v", got)
	}
	xb := getList(t, s, "/api/bindings/%2F/e/logs/e/audit")
	if len(xb) != 1 || xb[0]["properties_key"] != "%23" {
		t.Fatalf("exchange binding %v", xb)
	}
	guest(t, s, "DELETE", "/api/bindings/%2F/e/logs/e/audit/%2523", nil, http.StatusNoContent)
	guest(t, s, "DELETE", "/api/exchanges/%2F/logs?if-unused=true", nil, http.StatusNoContent)
	guest(t, s, "GET", "/api/exchanges/%2F/logs", nil, http.StatusNotFound)
	code, _ = apiCall(t, s, "DELETE", "/api/exchanges/%2F/amq.direct", "", "", nil)
	if code != http.StatusForbidden {
		t.Errorf("deleting amq.direct: %d", code)
	}
	guest(t, s, "POST", "/api/bindings/%2F/e/nope/q/errors", map[string]any{}, http.StatusNotFound)
	guest(t, s, "POST", "/api/bindings/%2F/e/audit/q/nope", map[string]any{}, http.StatusNotFound)
}

// RabbitMQ's error bodies: 404 for an unknown vhost, queue or exchange,
// 400 with a reason for malformed JSON or a wrong type, 413 for a huge
// body, 405 for a method the path lacks.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, path := range []string{"/api/queues/nosuchvhost", "/api/queues/%2F/nosuchqueue", "/api/exchanges/%2F/nosuchexchange",
		"/api/queues/nosuchvhost/q", "/api/bindings/nosuchvhost", "/api/exchanges/nosuchvhost", "/api/nosuchthing",
		"/api/definitions/nosuchvhost", "/api/aliveness-test/nosuchvhost", "/api/users/nosuchuser", "/api/vhosts/nosuchvhost",
		"/api/permissions/%2F/nosuchuser", "/api/connections/nosuchconnection", "/api/channels/nosuchchannel",
		"/api/nodes/nosuchnode", "/api/policies/%2F/nosuchpolicy", "/api/policies/nosuchvhost", "/api/consumers/nosuchvhost",
		"/api/exchanges/%2F/amq.direct/bindings/nosuch", "/api/bindings/%2F/e/amq.direct/q/nosuchqueue"} {
		code, raw := apiCall(t, s, "GET", path, "", "", nil)
		e, r := errorBody(t, raw)
		if code != http.StatusNotFound || e != "Object Not Found" || r != "Not Found" {
			t.Errorf("GET %s: %d %s", path, code, raw)
		}
	}
	for _, tc := range []struct{ body, reason string }{
		{`{"durable": tru`, "malformed JSON"},
		{`{"durable": "yes"}`, "field 'durable' must be a boolean"},
		{`{"arguments": []}`, "field 'arguments' must be an object"},
		{`[1,2]`, "the body must be an object"},
	} {
		code, raw := apiCall(t, s, "PUT", "/api/queues/%2F/q", "", "", tc.body)
		e, r := errorBody(t, raw)
		if code != http.StatusBadRequest || e != "bad_request" || !strings.Contains(r, tc.reason) {
			t.Errorf("PUT %s: %d %s, want 400 with %q", tc.body, code, raw, tc.reason)
		}
	}
	huge := `{"arguments":{"x":"` + strings.Repeat("a", 21<<20) + `"}}`
	code, raw := apiCall(t, s, "PUT", "/api/queues/%2F/q", "", "", huge)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 21 MiB body: %d %.200s", code, raw)
	}
	// Every endpoint that reads a body refuses a huge one with 413 and a
	// JSON error body, whatever its own bound (20 MiB, or 1 MiB for
	// policies and limits).
	guest(t, s, "PUT", "/api/queues/%2F/sized", map[string]any{}, http.StatusCreated)
	for _, ep := range []struct{ method, path string }{
		{"POST", "/api/definitions"}, {"PUT", "/api/exchanges/%2F/x"}, {"POST", "/api/exchanges/%2F/amq.direct/publish"},
		{"POST", "/api/bindings/%2F/e/amq.direct/q/sized"}, {"POST", "/api/queues/%2F/sized/get"}, {"PUT", "/api/users/u"},
		{"PUT", "/api/permissions/%2F/guest"}, {"PUT", "/api/policies/%2F/p"}, {"PUT", "/api/limits"},
	} {
		code, raw = apiCall(t, s, ep.method, ep.path, "", "", huge)
		if e, _ := errorBody(t, raw); code != http.StatusRequestEntityTooLarge || e == "" {
			t.Errorf("%s %s with a 21 MiB body: %d %.200s", ep.method, ep.path, code, raw)
		}
	}
	if code, _ := apiCall(t, s, "PATCH", "/api/queues/%2F/q", "", "", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("PATCH a queue: %d", code)
	}
	guest(t, s, "GET", "/api/queues/%2F/q", nil, http.StatusNotFound) // nothing was declared by the refused requests
}

// A queue and an exchange show the policy they match, and a queue its
// effective definition, as RabbitMQ's policy, operator_policy and
// effective_policy_definition fields.
func TestQueueAndExchangeShowTheirPolicy(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/capped.q", map[string]any{}, http.StatusCreated)
	guest(t, s, "PUT", "/api/exchanges/%2F/capped.x", map[string]any{"type": "fanout"}, http.StatusCreated)
	q := getObject(t, s, "/api/queues/%2F/capped.q")
	hasFields(t, "queue", q, "policy", "operator_policy", "effective_policy_definition")
	if q["policy"] != nil || len(q["effective_policy_definition"].(map[string]any)) != 0 {
		t.Errorf("before any policy: %v %v", q["policy"], q["effective_policy_definition"])
	}
	guest(t, s, "PUT", "/api/policies/%2F/cap", `{"pattern":"^capped\\.","definition":{"max-length":5},"apply-to":"all"}`, http.StatusCreated)
	q = getObject(t, s, "/api/queues/%2F/capped.q")
	if q["policy"] != "cap" || q["effective_policy_definition"].(map[string]any)["max-length"] != 5.0 {
		t.Errorf("with the policy: %v %v", q["policy"], q["effective_policy_definition"])
	}
	if x := getObject(t, s, "/api/exchanges/%2F/capped.x"); x["policy"] != "cap" {
		t.Errorf("exchange policy %v", x["policy"])
	}
	if x := getObject(t, s, "/api/exchanges/%2F/amq.fanout"); x["policy"] != nil {
		t.Errorf("amq.fanout's policy %v", x["policy"])
	}
}

// A vhost's max-queues holds for queues declared over HTTP, as for AMQP;
// a redeclare of an existing queue is not a new one.
func TestHTTPDeclareHonoursMaxQueues(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/first", map[string]any{}, http.StatusCreated)
	guest(t, s, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]any{"value": 1}, http.StatusNoContent)
	code, raw := apiCall(t, s, "PUT", "/api/queues/%2F/second", "", "", map[string]any{})
	if e, r := errorBody(t, raw); code != http.StatusBadRequest || e != "bad_request" || !strings.Contains(r, "vhost queue limit (1) is reached") {
		t.Fatalf("a queue past max-queues: %d %s", code, raw)
	}
	guest(t, s, "PUT", "/api/queues/%2F/first", map[string]any{}, http.StatusNoContent)
	guest(t, s, "GET", "/api/queues/%2F/second", nil, http.StatusNotFound)
}

// The vhost's max-message-size holds for the HTTP publish too (review7 F4):
// AMQP answers 406 and MQTT its reason code; the API refuses with 400 and
// routes nothing.
func TestHTTPPublishHonoursMaxMessageSize(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/small", map[string]any{}, http.StatusCreated)
	guest(t, s, "PUT", "/api/vhost-limits/%2F/max-message-size", map[string]any{"value": 100}, http.StatusNoContent)
	code, raw := apiCall(t, s, "POST", "/api/exchanges/%2F/amq.default/publish", "", "", map[string]any{"properties": map[string]any{},
		"routing_key": "small", "payload": strings.Repeat("x", 5000), "payload_encoding": "string"})
	if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "max-message-size") {
		t.Fatalf("a 5,000-byte HTTP publish past a 100-byte limit: %d %s", code, raw)
	}
	out := guest(t, s, "POST", "/api/exchanges/%2F/amq.default/publish", map[string]any{"properties": map[string]any{},
		"routing_key": "small", "payload": "fits", "payload_encoding": "string"}, http.StatusOK)
	if string(out) != `{"routed":true}`+"\n" {
		t.Fatalf("a publish within the limit: %s", out)
	}
	if q := getObject(t, s, "/api/queues/%2F/small"); q["messages"] != 1.0 {
		t.Fatalf("the queue holds %v messages, want only the one within the limit", q["messages"])
	}
}
