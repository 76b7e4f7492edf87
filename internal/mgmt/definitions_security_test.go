package mgmt_test

import (
	"encoding/json"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}

// TestDefinitionsSecurityRoundTrip: users (hash, tags, limits),
// permissions, topic permissions, policies and operator policies export
// and import into a fresh server unchanged; the user logs in there with
// its password.
func TestDefinitionsSecurityRoundTrip(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/vhosts/iot", nil, http.StatusCreated)
	guest(t, s, "PUT", "/api/users/u1", map[string]any{"password": "pw1", "tags": "monitoring"}, http.StatusCreated)
	guest(t, s, "PUT", "/api/user-limits/u1/max-connections", map[string]any{"value": 3}, http.StatusNoContent)
	guest(t, s, "PUT", "/api/permissions/iot/u1", map[string]string{"configure": "^u1\\.", "write": ".*", "read": ".*"}, http.StatusCreated)
	guest(t, s, "PUT", "/api/topic-permissions/iot/u1", map[string]string{"exchange": "amq.topic", "write": "^s\\.{username}\\.", "read": ".*"}, http.StatusCreated)
	guest(t, s, "PUT", "/api/policies/iot/ttl", map[string]any{"pattern": "^t\\.", "apply-to": "queues", "definition": map[string]any{"message-ttl": 1000}, "priority": 2}, http.StatusCreated)
	guest(t, s, "PUT", "/api/operator-policies/iot/cap", map[string]any{"pattern": ".*", "apply-to": "queues", "definition": map[string]any{"max-length": 100}}, http.StatusCreated)
	exported := guest(t, s, "GET", "/api/definitions", nil, http.StatusOK)

	other := testkit.Start(t)
	guest(t, other, "POST", "/api/definitions", exported, http.StatusNoContent)
	a, b := s.Broker.Users(), other.Broker.Users()
	if _, err := b.Authenticate("u1", "pw1", loopback); err != nil {
		t.Fatalf("imported user cannot log in with its password: %v", err)
	}
	u, _ := b.Lookup("u1")
	if !reflect.DeepEqual(u.Tags, []string{"monitoring"}) {
		t.Errorf("tags %v", u.Tags)
	}
	if got := b.UserLimit("u1", "max-connections"); got != 3 {
		t.Errorf("user limit %d, want 3", got)
	}
	if !reflect.DeepEqual(a.Permissions(), b.Permissions()) {
		t.Errorf("permissions\n%v\n%v", a.Permissions(), b.Permissions())
	}
	if !reflect.DeepEqual(a.TopicPermissions(), b.TopicPermissions()) {
		t.Errorf("topic permissions\n%v\n%v", a.TopicPermissions(), b.TopicPermissions())
	}
	for _, op := range []bool{false, true} {
		if pa, pb := s.Broker.Policies("", op), other.Broker.Policies("", op); len(pa) != 1 || !reflect.DeepEqual(pa, pb) {
			t.Errorf("policies (operator %v)\n%v\n%v", op, pa, pb)
		}
	}
}

// TestDefinitionsRabbitMQSecurityImport: a RabbitMQ 3.13 export with
// SHA-256 password hashes imports: a new user comes without a password
// (login refused until one is set), an existing one keeps its password;
// permissions and policies apply. The answer (200, not 204) lists the
// user left unable to log in, and only that one.
func TestDefinitionsRabbitMQSecurityImport(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	raw := guest(t, s, "POST", "/api/definitions", []byte(rabbit313Export), http.StatusOK)
	var answer struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || len(answer.Warnings) != 1 ||
		!strings.HasPrefix(answer.Warnings[0], "user 'billing' was imported without a password") {
		t.Fatalf("import answer: %v %s", err, raw)
	}
	st := s.Broker.Users()
	if _, ok := st.Lookup("billing"); !ok {
		t.Fatal("user billing not imported")
	}
	if _, err := st.Authenticate("billing", "", loopback); err == nil {
		t.Error("billing logs in without a password")
	}
	if _, err := st.Authenticate("guest", "guest", loopback); err != nil {
		t.Errorf("guest lost its password to an unverifiable hash: %v", err)
	}
	if g := st.Grant("billing", "billing"); g == nil || g.Configure != "^invoice\\." {
		t.Errorf("billing's permission: %+v", g)
	}
	if ps := s.Broker.Policies("billing", false); len(ps) != 1 || ps[0].Name != "ttl" {
		t.Errorf("policies: %+v", ps)
	}
	// Setting the password lets it in.
	guest(t, s, "PUT", "/api/users/billing", map[string]any{"password": "new", "tags": ""}, http.StatusNoContent)
	if _, err := st.Authenticate("billing", "new", loopback); err != nil {
		t.Error(err)
	}
}

// TestDefinitionsSecurityAllOrNothing: a bad policy, permission or user
// refuses the whole import (400) and nothing of it is applied.
func TestDefinitionsSecurityAllOrNothing(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for name, doc := range map[string]string{
		"bad policy":      `{"vhosts":[{"name":"v2"}],"users":[{"name":"x","password_hash":"","tags":[]}],"policies":[{"vhost":"v2","name":"p","pattern":"(","apply-to":"queues","definition":{"message-ttl":1}}]}`,
		"unknown vhost":   `{"users":[{"name":"x","password_hash":"","tags":[]}],"permissions":[{"user":"x","vhost":"nope","configure":"","write":"","read":""}]}`,
		"unknown user":    `{"vhosts":[{"name":"v2"}],"permissions":[{"user":"nobody","vhost":"v2","configure":"","write":"","read":""}]}`,
		"bad user limit":  `{"vhosts":[{"name":"v2"}],"users":[{"name":"x","password_hash":"","tags":[],"limits":{"max-queues":1}}]}`,
		"bad topic regex": `{"vhosts":[{"name":"v2"}],"users":[{"name":"x","password_hash":"","tags":[]}],"topic_permissions":[{"user":"x","vhost":"v2","exchange":"amq.topic","write":"(?=a)","read":""}]}`,
	} {
		code, raw := apiCall(t, s, "POST", "/api/definitions", "", "", []byte(doc))
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, code, raw)
		}
		if _, ok := s.Broker.Users().Lookup("x"); ok {
			t.Errorf("%s: user x was created by a refused import", name)
		}
		if s.Broker.VHost("v2") != nil {
			t.Errorf("%s: vhost v2 was created by a refused import", name)
		}
	}
	// A valid one works: the permission names a vhost of the same file.
	ok := `{"vhosts":[{"name":"v3"}],"users":[{"name":"y","password_hash":"","tags":"management"}],"permissions":[{"user":"y","vhost":"v3","configure":".*","write":".*","read":".*"}]}`
	guest(t, s, "POST", "/api/definitions", []byte(ok), http.StatusNoContent)
	if s.Broker.Users().Grant("y", "v3") == nil {
		t.Error("permission in the file's own vhost not applied")
	}
}

// A RabbitMQ 3.10-3.13 file with a queue-version policy (how CQv2 was
// switched on) imports whole, the key kept with no effect, and the answer
// says so; it used to refuse the whole file.
func TestDefinitionsImportQueueVersionPolicyWarns(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	file := `{"vhosts":[{"name":"imported"}],` +
		`"policies":[{"vhost":"imported","name":"cqv2","pattern":".*","apply-to":"queues","definition":{"queue-version":2},"priority":0}],` +
		`"queues":[{"name":"q","vhost":"imported","durable":true,"auto_delete":false,"arguments":{"x-queue-version":2}}]}`
	raw := guest(t, s, "POST", "/api/definitions", file, http.StatusOK)
	var answer struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || len(answer.Warnings) != 1 ||
		!strings.Contains(answer.Warnings[0], "policy 'cqv2' in vhost 'imported': queue-version has no effect") {
		t.Fatalf("import answer: %v %s", err, raw)
	}
	if ps := s.Broker.Policies("imported", false); len(ps) != 1 || ps[0].Definition["queue-version"] != int64(2) {
		t.Fatalf("policies: %+v", ps)
	}
	if s.Broker.VHost("imported").LookupQueue("q") == nil {
		t.Fatal("the file's queue was not imported")
	}
}
