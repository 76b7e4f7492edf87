package amqp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestTopicPermissionAfterExchangeRetyped: an open channel that published
// to a direct exchange must apply the topic permission once the exchange
// is deleted and declared again as a topic exchange (finding 4: the
// channel cached "not a topic exchange").
func TestTopicPermissionAfterExchangeRetyped(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	api(t, s, "PUT", "/api/users/dev1", map[string]string{"password": "pw"}, http.StatusCreated)
	api(t, s, "PUT", "/api/permissions/%2F/dev1", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, http.StatusCreated)
	api(t, s, "PUT", "/api/topic-permissions/%2F/dev1", map[string]string{"exchange": "X", "write": `^ok$`, "read": ".*"}, http.StatusCreated)
	conn, err := dialAs(s, "dev1", "pw", "/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.ExchangeDeclare("X", "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := publishWait(ch, "X", "anything"); err != nil {
		t.Fatalf("a direct exchange has no topic permission: %v", err)
	}
	if err := admin.ExchangeDelete("X", false, false); err != nil {
		t.Fatal(err)
	}
	if err := admin.ExchangeDeclare("X", "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := publishWait(ch, "X", "anything"); err == nil || !strings.Contains(err.Error(), "write access to topic 'anything' in exchange 'X'") {
		t.Fatalf("publish to the re-declared topic exchange: %v, want ACCESS_REFUSED", err)
	}
}
