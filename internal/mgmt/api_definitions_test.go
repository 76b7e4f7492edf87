package mgmt_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
	"github.com/tern-broker/tern/internal/mgmt"
	"github.com/tern-broker/tern/internal/testkit"
)

// rabbit313Export is a definitions file as RabbitMQ 3.13 exports it
// (GET /api/definitions): node metadata, users with their password hashes,
// vhosts with metadata, permissions, topic permissions, runtime parameters
// (a vhost's limits are one, component vhost-limits), global parameters,
// policies, then queues, exchanges and bindings.
const rabbit313Export = `{
  "rabbit_version": "3.13.7",
  "rabbitmq_version": "3.13.7",
  "product_name": "RabbitMQ",
  "product_version": "3.13.7",
  "users": [
    {"name": "guest", "password_hash": "ttbzVmdbQNvENIRJ7mpLUbdDJehR8BVi6b3PvJaY8M5vNQWb", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"], "limits": {}},
    {"name": "billing", "password_hash": "6PZ3RkkJGBBVAqxCNZX0Q8bdUSsdVVPoJz2qlxtDNMCTrx2W", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": [], "limits": {}}
  ],
  "vhosts": [
    {"name": "/", "description": "Default virtual host", "tags": [], "default_queue_type": "classic", "metadata": {"description": "Default virtual host", "tags": [], "default_queue_type": "classic"}},
    {"name": "billing", "description": "", "tags": [], "metadata": {"description": "", "tags": []}}
  ],
  "permissions": [
    {"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "billing", "vhost": "billing", "configure": "^invoice\\.", "write": ".*", "read": ".*"}
  ],
  "topic_permissions": [],
  "parameters": [
    {"value": {"max-connections": 100, "max-queues": 10}, "vhost": "billing", "component": "vhost-limits", "name": "limits"}
  ],
  "global_parameters": [{"name": "internal_cluster_id", "value": "rabbitmq-cluster-id-nJ4tDQa8Hl3yvR5nH1bX0w"}],
  "policies": [
    {"vhost": "billing", "name": "ttl", "pattern": "^invoice\\.", "apply-to": "queues", "definition": {"message-ttl": 86400000}, "priority": 0}
  ],
  "queues": [
    {"name": "invoice.created", "vhost": "billing", "durable": true, "auto_delete": false, "arguments": {"x-queue-type": "classic", "x-max-length": 100000, "x-dead-letter-exchange": "billing.dlx"}},
    {"name": "invoice.dead", "vhost": "billing", "durable": true, "auto_delete": false, "arguments": {}},
    {"name": "audit", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {"x-message-ttl": 60000, "x-overflow": "reject-publish"}}
  ],
  "exchanges": [
    {"name": "billing.events", "vhost": "billing", "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {"alternate-exchange": "billing.unrouted"}},
    {"name": "billing.unrouted", "vhost": "billing", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
    {"name": "billing.dlx", "vhost": "billing", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
    {"name": "billing.match", "vhost": "billing", "type": "headers", "durable": true, "auto_delete": false, "internal": true, "arguments": {}}
  ],
  "bindings": [
    {"source": "billing.events", "vhost": "billing", "destination": "invoice.created", "destination_type": "queue", "routing_key": "invoice.created.*", "arguments": {}},
    {"source": "billing.dlx", "vhost": "billing", "destination": "invoice.dead", "destination_type": "queue", "routing_key": "", "arguments": {}},
    {"source": "billing.events", "vhost": "billing", "destination": "billing.match", "destination_type": "exchange", "routing_key": "#", "arguments": {}},
    {"source": "billing.match", "vhost": "billing", "destination": "invoice.dead", "destination_type": "queue", "routing_key": "", "arguments": {"x-match": "all", "kind": "refund"}}
  ]
}`

// brokerPart keeps the parts of a definitions document this package owns,
// sorted, for comparing an import with an export.
func brokerPart(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range []string{"queues", "exchanges", "bindings"} {
		items, _ := doc[k].([]any)
		keys := make([]string, 0, len(items))
		for _, it := range items {
			b, _ := json.Marshal(it)
			keys = append(keys, string(b))
		}
		sort.Strings(keys)
		out[k] = keys
	}
	var vhosts []string
	for _, v := range doc["vhosts"].([]any) {
		vhosts = append(vhosts, v.(map[string]any)["name"].(string))
	}
	sort.Strings(vhosts)
	out["vhosts"] = vhosts
	return out
}

// withoutSections drops users, permissions and policies, which the
// server imports through its DefinitionsSection (definitions_security.go;
// definitions_security_test.go covers them), to compare the broker's part.
func withoutSections(t *testing.T, raw string) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"users", "permissions", "policies"} {
		delete(doc, k)
	}
	out, _ := json.Marshal(doc)
	return out
}

// A RabbitMQ 3.13 export imports; the export of the result holds the same
// queues, exchanges and bindings; that export imports into another node,
// which exports it again unchanged; the objects work and survive a
// restart.
func TestDefinitionsRabbitMQImportRoundTrip(t *testing.T) {
	t.Parallel()
	file := withoutSections(t, rabbit313Export)
	s := testkit.Start(t)
	guest(t, s, "POST", "/api/definitions", file, http.StatusNoContent)
	exported := guest(t, s, "GET", "/api/definitions", nil, http.StatusOK)
	var doc map[string]any
	if err := json.Unmarshal(exported, &doc); err != nil {
		t.Fatal(err)
	}
	hasFields(t, "export", doc, "rabbit_version", "rabbitmq_version", "product_name", "product_version", "vhosts", "queues", "exchanges", "bindings")
	want, got := brokerPart(t, file), brokerPart(t, exported)
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("export differs from the imported file:\nimported %v\nexported %v", want, got)
	}
	// The vhost limits came in from parameters and go out the same way.
	wantLimits := []any{map[string]any{"value": map[string]any{"max-connections": 100.0, "max-queues": 10.0},
		"vhost": "billing", "component": "vhost-limits", "name": "limits"}}
	if !reflect.DeepEqual(doc["parameters"], wantLimits) {
		t.Fatalf("exported parameters %v, want %v", doc["parameters"], wantLimits)
	}
	if l := s.Broker.Users().VHostLimit("billing", "max-queues"); l != 10 {
		t.Fatalf("billing's max-queues after the import: %d", l)
	}

	other := testkit.Start(t)
	guest(t, other, "POST", "/api/definitions", exported, http.StatusNoContent)
	if again := guest(t, other, "GET", "/api/definitions", nil, http.StatusOK); !reflect.DeepEqual(brokerPart(t, again), got) {
		t.Fatalf("a second round trip changed the definitions:\n%v\n%v", got, brokerPart(t, again))
	}
	if l := other.Broker.Users().VHostLimit("billing", "max-connections"); l != 100 {
		t.Fatalf("the round trip lost billing's max-connections: %d", l)
	}
	// Importing the same file again changes nothing and succeeds.
	guest(t, s, "POST", "/api/definitions", file, http.StatusNoContent)

	// The imported topology routes: billing.events → invoice.created, and
	// through billing.match (headers) to invoice.dead.
	guest(t, s, "POST", "/api/exchanges/billing/billing.events/publish", map[string]any{"routing_key": "invoice.created.eu",
		"payload": "i1", "payload_encoding": "string", "properties": map[string]any{"headers": map[string]any{"kind": "refund"}}}, http.StatusOK)
	if q := getObject(t, s, "/api/queues/billing/invoice.created"); q["messages"] != 1.0 {
		t.Errorf("invoice.created: %v", q["messages"])
	}
	if q := getObject(t, s, "/api/queues/billing/invoice.dead"); q["messages"] != 1.0 {
		t.Errorf("invoice.dead via the headers exchange: %v", q["messages"])
	}
	restarted := s.Restart(t)
	if again := guest(t, restarted, "GET", "/api/definitions", nil, http.StatusOK); !reflect.DeepEqual(brokerPart(t, again), got) {
		t.Fatalf("the restart lost definitions:\n%v\n%v", got, brokerPart(t, again))
	}

	// A per-vhost export has the vhost's objects only, and imports into
	// another vhost.
	vdoc := map[string][]map[string]any{}
	raw := guest(t, restarted, "GET", "/api/definitions/billing", nil, http.StatusOK)
	var vraw map[string]json.RawMessage
	if err := json.Unmarshal(raw, &vraw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queues", "exchanges", "bindings"} {
		var items []map[string]any
		if err := json.Unmarshal(vraw[k], &items); err != nil {
			t.Fatal(err)
		}
		vdoc[k] = items
	}
	if len(vdoc["queues"]) != 2 || len(vdoc["exchanges"]) != 4 || len(vdoc["bindings"]) != 4 {
		t.Errorf("billing's export: %s", raw)
	}
	if _, ok := vraw["vhosts"]; ok {
		t.Error("a vhost's export lists vhosts")
	}
	if err := restarted.Broker.Apply(broker.AddVHost{Name: "copy"}); err != nil {
		t.Fatal(err)
	}
	guest(t, restarted, "POST", "/api/definitions/copy", raw, http.StatusNoContent)
	if n := len(getList(t, restarted, "/api/queues/copy")); n != 2 {
		t.Errorf("%d queues imported into copy, want 2", n)
	}
	if n := len(getList(t, restarted, "/api/queues/billing")); n != 2 {
		t.Errorf("billing has %d queues after the copy, want 2", n)
	}
}

// A file that fails half way — a binding to a queue that neither exists
// nor is in the file, an argument of the wrong type, a vhost missing, an
// inequivalent redeclaration, a wrong JSON type, something the node cannot
// import — changes nothing.
func TestDefinitionsImportIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/existing", map[string]any{"durable": true}, http.StatusCreated)
	before := guest(t, s, "GET", "/api/definitions", nil, http.StatusOK)
	good := `{"name":"new.q","vhost":"/","durable":true,"auto_delete":false,"arguments":{}}`
	goodX := `{"name":"new.x","vhost":"/","type":"direct","durable":true,"auto_delete":false,"internal":false,"arguments":{}}`
	for _, tc := range []struct{ file, reason string }{
		{`{"queues":[` + good + `],"exchanges":[` + goodX + `],"bindings":[{"source":"new.x","vhost":"/","destination":"ghost","destination_type":"queue","routing_key":"","arguments":{}}]}`,
			"queue 'ghost' in vhost '/' does not exist"},
		{`{"queues":[` + good + `,{"name":"bad","vhost":"/","durable":true,"auto_delete":false,"arguments":{"x-max-length":"many"}}]}`, "x-max-length"},
		{`{"exchanges":[` + goodX + `],"queues":[{"name":"q","vhost":"nowhere","durable":true,"auto_delete":false,"arguments":{}}]}`, "vhost 'nowhere' does not exist"},
		{`{"queues":[` + good + `,{"name":"existing","vhost":"/","durable":false,"auto_delete":false,"arguments":{}}]}`, "inequivalent arg 'durable'"},
		{`{"queues":[` + good + `],"exchanges":[{"name":"t","vhost":"/","type":"bogus","durable":true}]}`, "unknown exchange type"},
		{`{"vhosts":[{"name":"newvhost"}],"queues":[{"name":"q","vhost":"/","durable":"yes"}]}`, "queues: field 'durable' must be a boolean"},
		{`{"vhosts":[{"name":"newvhost"}],"queues":[` + good + `],"users":[{"name":"u","password_hash":"x","tags":[]}]}`, "user 'u': password_hash"},
		{`{"queues":[` + good + `],"bindings":[{"source":"amq.direct","vhost":"/","destination":"new.q","destination_type":"topic","routing_key":""}]}`, "destination_type"},
		{`{"queues":[` + good + `,{"name":"new.q","vhost":"/","durable":false,"auto_delete":false,"arguments":{}}]}`, "appears twice"},
		{`{"queues": {"name": "q"}}`, "queues: the body must be an array"},
		{`{"queues":[` + good + `],"parameters":[{"value":{"uri":"amqp://x"},"vhost":"/","component":"federation-upstream","name":"up"}]}`,
			"component 'federation-upstream'"},
		{`{"queues":[` + good + `],"parameters":[{"value":{"max-bogus":1},"vhost":"/","component":"vhost-limits","name":"limits"}]}`,
			"unknown vhost limit 'max-bogus'"},
		{`{"queues":[` + good + `],"parameters":[{"value":{"max-queues":"ten"},"vhost":"/","component":"vhost-limits","name":"limits"}]}`,
			"must be an object of integers"},
		{`{"queues":[` + good + `],"parameters":[{"value":{"max-queues":1},"vhost":"ghost","component":"vhost-limits","name":"limits"}]}`,
			"vhost 'ghost' does not exist"},
		// RabbitMQ 3.13's classic mirroring keys: refused (as RabbitMQ 4 does), named.
		{`{"queues":[` + good + `],"parameters":[{"value":{"max-queues":1},"vhost":"/","component":"vhost-limits","name":"limits"}],` +
			`"policies":[{"vhost":"/","name":"ha-all","pattern":".*","apply-to":"queues","definition":{"ha-mode":"all","ha-sync-mode":"automatic","max-length":5},"priority":0}]}`,
			"'ha-mode' is classic queue mirroring, removed in RabbitMQ 4.0"},
		// A consistent-hash binding whose key is no weight (checked before
		// anything changes, as the plugin refuses it), and arguments that
		// name no hash source.
		{`{"queues":[` + good + `],"exchanges":[{"name":"ch","vhost":"/","type":"x-consistent-hash","durable":true,"arguments":{}}],` +
			`"bindings":[{"source":"ch","vhost":"/","destination":"new.q","destination_type":"queue","routing_key":"orders","arguments":{}}]}`,
			`The binding key must be an integer: <<"orders">>`},
		{`{"queues":[` + good + `],"exchanges":[{"name":"ch","vhost":"/","type":"x-consistent-hash","durable":true,"arguments":{"hash-property":"app_id"}}]}`,
			"Unsupported property: app_id"},
		// A vhost default queue type Tern would not honour (RabbitMQ 3.11+).
		{`{"vhosts":[{"name":"newvhost","default_queue_type":"quorum"}],"queues":[` + good + `]}`,
			"vhosts[0] 'newvhost': default_queue_type 'quorum' is not supported"},
		{`{"vhosts":[{"name":"newvhost","metadata":{"default_queue_type":"stream"}}],"queues":[` + good + `]}`,
			"default_queue_type 'stream' is not supported"},
		{`not json`, "malformed JSON"},
	} {
		code, raw := apiCall(t, s, "POST", "/api/definitions", "", "", tc.file)
		e, r := errorBody(t, raw)
		if code != http.StatusBadRequest || e != "bad_request" || !strings.Contains(r, tc.reason) {
			t.Errorf("import %s: %d %s, want 400 with %q", tc.file, code, raw, tc.reason)
		}
		if after := guest(t, s, "GET", "/api/definitions", nil, http.StatusOK); !reflect.DeepEqual(brokerPart(t, before), brokerPart(t, after)) {
			t.Fatalf("a refused import changed the definitions:\n%s\n%s", before, after)
		}
		if l := s.Broker.Users().VHostLimits(); len(l) != 0 {
			t.Fatalf("a refused import set vhost limits: %v", l)
		}
		if ps := s.Broker.Policies("", false); len(ps) != 0 {
			t.Fatalf("a refused import set policies: %v", ps)
		}
	}
	if s.Broker.VHost("newvhost") != nil {
		t.Error("a refused import created its vhost")
	}
}

// usersSection is a DefinitionsSection as the users package gives one: it
// checks every user before any is stored.
func usersSection(store *auth.Store, failOn string) mgmt.DefinitionsSection {
	return mgmt.DefinitionsSection{
		Keys: []string{"users", "permissions"},
		Export: func() (map[string]any, error) {
			u, _ := store.Lookup("billing")
			return map[string]any{"users": []map[string]any{{"name": u.Name, "tags": u.Tags}}, "permissions": []any{}}, nil
		},
		Prepare: func(raw map[string]json.RawMessage) (func() error, error) {
			var users []struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			}
			if err := json.Unmarshal(raw["users"], &users); err != nil {
				return nil, err
			}
			for _, u := range users {
				if u.Name == failOn {
					return nil, errors.New("users: '" + u.Name + "' is refused")
				}
			}
			return func() error {
				for _, u := range users {
					store.Put(auth.User{Name: u.Name, Tags: u.Tags})
				}
				return nil
			}, nil
		},
	}
}

// Sections (users and permissions here) are checked with everything else
// before anything is applied: a section that refuses its part stops the
// broker's objects too, and one that accepts is applied with them.
func TestDefinitionsSectionsAllOrNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failOn string
		want   int
	}{{"billing", http.StatusBadRequest}, {"", http.StatusNoContent}} {
		b := broker.New(broker.Config{})
		users := auth.NewStore()
		users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("pw"), VHosts: []string{"*"}, Tags: []string{"administrator"}})
		policies := mgmt.DefinitionsSection{Keys: []string{"policies"}, Export: func() (map[string]any, error) { return nil, nil },
			Prepare: func(map[string]json.RawMessage) (func() error, error) { return nil, nil }}
		h := mgmt.Handler(mgmt.Sources{Broker: b.Stats, Users: users,
			API: &mgmt.API{Broker: b, Definitions: []mgmt.DefinitionsSection{usersSection(users, tc.failOn), policies}}}, false)
		req := httptest.NewRequest("POST", "/api/definitions", strings.NewReader(rabbit313Export))
		req.SetBasicAuth("admin", "pw")
		req.RemoteAddr = "127.0.0.1:1234"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Fatalf("failOn %q: %d %s, want %d", tc.failOn, w.Code, w.Body, tc.want)
		}
		_, hasUser := users.Lookup("billing")
		hasVHost := b.VHost("billing") != nil
		if tc.want == http.StatusBadRequest && (hasUser || hasVHost) {
			t.Errorf("a refused section let the import apply (user %v, vhost %v)", hasUser, hasVHost)
		}
		if tc.want == http.StatusNoContent {
			if !hasUser || !hasVHost || b.VHost("billing").LookupQueue("invoice.created") == nil {
				t.Errorf("accepted import not applied (user %v, vhost %v)", hasUser, hasVHost)
			}
			req := httptest.NewRequest("GET", "/api/definitions", nil)
			req.SetBasicAuth("admin", "pw")
			req.RemoteAddr = "127.0.0.1:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var doc map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || doc["users"] == nil || doc["permissions"] == nil {
				t.Errorf("the export lacks the section's keys: %s", w.Body)
			}
		}
	}
}

// TestDefinitionsImportPastMaxQueuesChangesNothing: an import whose new
// queues would take a vhost past its max-queues is refused with 400
// before anything is applied; it used to stop at the limit part way (500)
// with the first queues declared.
func TestDefinitionsImportPastMaxQueuesChangesNothing(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/queues/%2F/existing", map[string]any{"durable": true}, http.StatusCreated)
	guest(t, s, "PUT", "/api/vhost-limits/%2F/max-queues", map[string]any{"value": 2}, http.StatusNoContent)
	q := func(name string) string {
		return `{"name":"` + name + `","vhost":"/","durable":true,"auto_delete":false,"arguments":{}}`
	}
	code, raw := apiCall(t, s, "POST", "/api/definitions", "", "", `{"queues":[`+q("existing")+`,`+q("a")+`,`+q("b")+`]}`)
	if e, r := errorBody(t, raw); code != http.StatusBadRequest || e != "bad_request" || !strings.Contains(r, "vhost queue limit (2)") {
		t.Fatalf("import past max-queues: %d %s, want 400 naming the limit", code, raw)
	}
	if v := s.Broker.VHost("/"); v.LookupQueue("a") != nil || v.LookupQueue("b") != nil {
		t.Fatal("a refused import declared a queue")
	}
	// One new queue fits (the existing one is not counted twice).
	if code, raw := apiCall(t, s, "POST", "/api/definitions", "", "", `{"queues":[`+q("existing")+`,`+q("a")+`]}`); code != http.StatusNoContent {
		t.Fatalf("import within max-queues: %d %s", code, raw)
	}
}
