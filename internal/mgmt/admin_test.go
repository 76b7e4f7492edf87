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

// call sends a request with the given basic credentials (none when user is
// "") and returns the status, the challenge header and body.
func call(t *testing.T, s *testkit.Server, method, path, user, password string) (int, string, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader(someLimits)
	}
	req, err := http.NewRequest(method, s.HTTPURL+path, body)
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
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(raw)
}

func putLimits(t *testing.T, s *testkit.Server, user, password string) (int, string, string) {
	t.Helper()
	return call(t, s, http.MethodPut, "/api/limits", user, password)
}

func withAPIUsers(c *config.Config) {
	c.Users = []config.User{
		{Name: "admin", Password: "adminpw", VHosts: []string{"*"}, Tags: []string{"administrator"}},
		{Name: "watcher", Password: "watcherpw", Tags: []string{"monitoring"}},
		{Name: "ops", Password: "opspw", Tags: []string{"management"}},
		{Name: "app", Password: "apppw"},
	}
}

func TestAPIAccessByTag(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers, func(c *config.Config) { c.Pprof = true })
	for _, tc := range []struct {
		method, path, user, password string
		want                         int
	}{
		{"PUT", "/api/limits", "", "", http.StatusUnauthorized},
		{"PUT", "/api/limits", "admin", "wrong", http.StatusUnauthorized},
		{"PUT", "/api/limits", "nobody", "x", http.StatusUnauthorized},
		{"PUT", "/api/limits", "app", "apppw", http.StatusForbidden},
		{"PUT", "/api/limits", "watcher", "watcherpw", http.StatusForbidden},
		{"PUT", "/api/limits", "ops", "opspw", http.StatusForbidden},
		{"GET", "/api/limits", "", "", http.StatusUnauthorized},
		{"GET", "/api/limits", "app", "apppw", http.StatusForbidden},
		{"GET", "/api/limits", "watcher", "watcherpw", http.StatusOK},
		{"GET", "/api/limits", "ops", "opspw", http.StatusOK},
		{"GET", "/api/limits", "admin", "adminpw", http.StatusOK},
		{"GET", "/debug/pprof/", "", "", http.StatusUnauthorized},
		{"GET", "/debug/pprof/", "watcher", "watcherpw", http.StatusForbidden},
		{"GET", "/debug/pprof/", "admin", "adminpw", http.StatusOK},
		{"GET", "/healthz", "", "", http.StatusOK},
		{"GET", "/metrics", "", "", http.StatusOK},
		{"POST", "/healthz", "", "", http.StatusUnauthorized}, // open paths are open to reads only
	} {
		code, challenge, body := call(t, s, tc.method, tc.path, tc.user, tc.password)
		if code != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.user, code, body, tc.want)
		}
		if code == http.StatusUnauthorized && !strings.HasPrefix(challenge, "Basic ") {
			t.Errorf("%s %s as %q: 401 without a Basic challenge (WWW-Authenticate %q)", tc.method, tc.path, tc.user, challenge)
		}
		if n := len(s.Broker.Limits().Limits()); n != 0 {
			t.Fatalf("%s %s as %q changed the limits (%d now)", tc.method, tc.path, tc.user, n)
		}
	}
	if code, _, body := putLimits(t, s, "admin", "adminpw"); code != http.StatusOK {
		t.Fatalf("administrator: %d %s", code, body)
	}
	if n := len(s.Broker.Limits().Limits()); n != 1 {
		t.Fatalf("administrator's limits not applied: %d", n)
	}
}

func TestOpenPathsCanBeClosed(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, withAPIUsers, func(c *config.Config) { c.HTTPOpenPaths = []string{"/healthz"} })
	if code, _, _ := call(t, s, "GET", "/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _, _ := call(t, s, "GET", "/metrics", "", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials once closed: %d", code)
	}
	if code, _, _ := call(t, s, "GET", "/metrics", "watcher", "watcherpw"); code != http.StatusOK {
		t.Errorf("/metrics as a monitoring user: %d", code)
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
