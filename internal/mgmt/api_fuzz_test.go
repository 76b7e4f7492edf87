package mgmt_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mgmt"
)

func fuzzHandler(t testing.TB) (http.Handler, *broker.Broker) {
	b := broker.New(broker.Config{})
	v := b.VHost("/")
	if _, err := v.DeclareQueue(broker.QueueConfig{Name: "q", Durable: true}, false, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := v.DeclareExchange(broker.ExchangeConfig{Name: "x", Type: "topic", Durable: true}, false); err != nil {
		t.Fatal(err)
	}
	if err := v.BindQueue("q", "x", "a.#", nil, 0); err != nil {
		t.Fatal(err)
	}
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{"administrator"}})
	return mgmt.Handler(mgmt.Sources{Broker: b.Stats, Users: users, API: &mgmt.API{Broker: b}}, false), b
}

func serve(h http.Handler, method, path string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", strings.NewReader(body))
	req.URL.Path, req.URL.RawPath = "", ""
	if u, err := req.URL.Parse(path); err == nil {
		req.URL = u
	}
	req.SetBasicAuth("admin", "pw")
	req.RemoteAddr = "127.0.0.1:1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// Any request gets an answer that is not a server error, and every error
// answer is RabbitMQ's JSON error body.
func FuzzAPIRequest(f *testing.F) {
	for _, s := range []struct{ m, p, b string }{
		{"PUT", "/api/queues/%2F/new", `{"durable":true,"arguments":{"x-max-length":5}}`},
		{"PUT", "/api/exchanges/%2F/y", `{"type":"fanout"}`},
		{"POST", "/api/bindings/%2F/e/x/q/q", `{"routing_key":"k","arguments":{"a":[1,{"b":null}]}}`},
		{"POST", "/api/exchanges/%2F/x/publish", `{"routing_key":"a.b","payload":"aGk=","payload_encoding":"base64","properties":{"headers":{"h":1.5},"priority":3}}`},
		{"POST", "/api/queues/%2F/q/get", `{"count":2,"ackmode":"reject_requeue_false","encoding":"auto","truncate":1}`},
		{"GET", "/api/queues?page=1&page_size=2&sort=message_stats.publish&columns=name,arguments.x&name=.*&use_regex=true", ""},
		{"DELETE", "/api/bindings/%2F/e/x/q/q/a.%23", ""},
		{"GET", "/api/bindings/%2F/e/x/q/q/~", ""},
	} {
		f.Add(s.m, s.p, s.b)
	}
	h, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "PUT", "POST", "DELETE":
		default:
			method = "GET"
		}
		if !strings.HasPrefix(path, "/api/") {
			path = "/api/" + path
		}
		w := serve(h, method, path, body)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Code != http.StatusTooManyRequests {
			var e struct{ Error, Reason string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s: %d with body %q", method, path, w.Code, w.Body)
			}
		}
	})
}

// A definitions import either applies or changes nothing.
func FuzzDefinitionsImport(f *testing.F) {
	f.Add(rabbit313Export)
	f.Add(`{"vhosts":[{"name":"v"}],"queues":[{"name":"a","vhost":"v","durable":true,"auto_delete":false,"arguments":{"x-queue-type":"stream"}}]}`)
	f.Add(`{"exchanges":[{"name":"e","vhost":"/","type":"x-delayed-message","durable":true,"arguments":{"x-delayed-type":"direct"}}],"bindings":[{"source":"e","vhost":"/","destination":"q","destination_type":"queue","routing_key":"r","arguments":{}}]}`)
	f.Add(`{"queues":[{"name":"q","vhost":"/","durable":false}]}`)
	f.Add(`{"vhosts":[{"name":"v"}],"parameters":[{"value":{"max-queues":1,"max-connections":5},"vhost":"v","component":"vhost-limits","name":"limits"}]}`)
	f.Add(`{"vhosts":[{"name":"v"}],"queues":[{"name":"a","vhost":"v","durable":true},{"name":"b","vhost":"v","durable":true}]}`)
	f.Add(`{"policies":[{"vhost":"/","name":"ha","pattern":".*","definition":{"ha-mode":"all"}}],"parameters":[{"value":{},"vhost":"/","component":"shovel","name":"s"}]}`)
	h, _ := fuzzHandler(f) // one node: argon2 runs once; accepted imports accumulate
	f.Fuzz(func(t *testing.T, doc string) {
		before := serve(h, "GET", "/api/definitions", "").Body.String()
		w := serve(h, "POST", "/api/definitions", doc)
		after := serve(h, "GET", "/api/definitions", "").Body.String()
		switch {
		case w.Code == http.StatusBadRequest:
			if before != after {
				t.Fatalf("a refused import (%s) changed the definitions:\n%s\n%s", w.Body, before, after)
			}
		case w.Code == http.StatusNoContent || w.Code == http.StatusOK: // 200: applied, with warnings
			// Importing the export again must be accepted.
			if w2 := serve(h, "POST", "/api/definitions", after); w2.Code != http.StatusNoContent && w2.Code != http.StatusOK {
				t.Fatalf("re-importing an export: %d %s\n%s", w2.Code, w2.Body, after)
			}
		default:
			t.Fatalf("import: %d %s", w.Code, w.Body)
		}
	})
}
