package mgmt_test

import (
	"net/http"
	"testing"

	"github.com/tern-broker/tern/internal/testkit"
)

// TestCreatedVHostGrantsCreator: PUT /api/vhosts/{name} gives the
// creating user full permissions there, as RabbitMQ's HTTP API does
// (finding 9).
func TestCreatedVHostGrantsCreator(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	guest(t, s, "PUT", "/api/vhosts/made", nil, http.StatusCreated)
	g := s.Broker.Users().Grant("guest", "made")
	if g == nil || g.Configure != ".*" || g.Write != ".*" || g.Read != ".*" {
		t.Fatalf("guest's permission in the vhost it created: %+v, want .* .* .*", g)
	}
}

// TestVHostScopedConnectionsAndChannels: /api/vhosts/{vhost}/connections
// and /channels answer (finding 10: the users/vhosts router took every
// /api/vhosts/ path and 404ed them).
func TestVHostScopedConnectionsAndChannels(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	for _, p := range []string{"/api/vhosts/%2F/connections", "/api/vhosts/%2F/channels"} {
		guest(t, s, "GET", p, nil, http.StatusOK)
	}
}
