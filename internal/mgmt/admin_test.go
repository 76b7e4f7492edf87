package mgmt_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tern-broker/tern/internal/config"
	"github.com/tern-broker/tern/internal/testkit"
)

const someLimits = `[{"vhost": "/", "user": "*", "publish_rate": 500, "publish_burst": 50}]`

// putLimits sends PUT /api/limits with the given basic credentials (none
// when user is "") and returns the status, the challenge header and body.
func putLimits(t *testing.T, s *testkit.Server, user, password string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.HTTPURL+"/api/limits", strings.NewReader(someLimits))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

func TestPutLimitsNeedsAnAdministrator(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, func(c *config.Config) {
		c.Users = []config.User{
			{Name: "admin", Password: "adminpw", VHosts: []string{"*"}, Tags: []string{"administrator"}},
			{Name: "app", Password: "apppw"},
		}
	})
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"", "", http.StatusUnauthorized},
		{"admin", "wrong", http.StatusUnauthorized},
		{"nobody", "x", http.StatusUnauthorized},
		{"app", "apppw", http.StatusForbidden},
	} {
		code, challenge, body := putLimits(t, s, tc.user, tc.password)
		if code != tc.want {
			t.Errorf("user %q: %d %s, want %d", tc.user, code, body, tc.want)
		}
		if code == http.StatusUnauthorized && !strings.HasPrefix(challenge, "Basic ") {
			t.Errorf("user %q: 401 without a Basic challenge (WWW-Authenticate %q)", tc.user, challenge)
		}
		if n := len(s.Broker.Limits().Limits()); n != 0 {
			t.Fatalf("user %q changed the limits (%d now)", tc.user, n)
		}
	}
	if code, _, body := putLimits(t, s, "admin", "adminpw"); code != http.StatusOK {
		t.Fatalf("administrator: %d %s", code, body)
	}
	if n := len(s.Broker.Limits().Limits()); n != 1 {
		t.Fatalf("administrator's limits not applied: %d", n)
	}
	// Reads stay open for probes and scrapers.
	for _, path := range []string{"/healthz", "/metrics", "/api/limits"} {
		resp, err := http.Get(s.HTTPURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without credentials: %d", path, resp.StatusCode)
		}
	}
}

func TestDefaultGuestIsAnAdministratorFromLoopback(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	if code, _, _ := putLimits(t, s, "", ""); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	if code, _, body := putLimits(t, s, "guest", "guest"); code != http.StatusOK {
		t.Fatalf("guest from loopback: %d %s", code, body)
	}
}
