package mgmt_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// A vhost's default_queue_type other than classic is refused with 400
// naming the key, not accepted and ignored: queues declared there without
// x-queue-type would be classic where the operator asked for quorum.
// classic (what RabbitMQ exports for a vhost with no default) is taken.
func TestVHostDefaultQueueTypeRefusedUnlessClassic(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, body := range []string{
		`{"description":"q","default_queue_type":"quorum"}`,
		`{"metadata":{"default_queue_type":"stream"}}`,
		`{"default_queue_type":5}`,
	} {
		code, raw := apiCall(t, s, "PUT", "/api/vhosts/qv", "", "", body)
		if _, r := errorBody(t, raw); code != http.StatusBadRequest || !strings.Contains(r, "default_queue_type") {
			t.Errorf("PUT %s: %d %s, want 400 naming default_queue_type", body, code, raw)
		}
		if s.Broker.VHost("qv") != nil {
			t.Fatalf("PUT %s created the vhost", body)
		}
	}
	if code, raw := apiCall(t, s, "PUT", "/api/vhosts/qv", "", "", `{"description":"c","default_queue_type":"classic"}`); code != http.StatusCreated {
		t.Fatalf("PUT with classic: %d %s", code, raw)
	}
	// An existing vhost is not changed to quorum either.
	if code, raw := apiCall(t, s, "PUT", "/api/vhosts/qv", "", "", `{"default_queue_type":"quorum"}`); code != http.StatusBadRequest {
		t.Fatalf("PUT quorum on an existing vhost: %d %s", code, raw)
	}
	if code, raw := apiCall(t, s, "PUT", "/api/vhosts/qv2", "", "", ""); code != http.StatusCreated {
		t.Fatalf("PUT without a body: %d %s", code, raw)
	}
}
