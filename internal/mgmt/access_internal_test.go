package mgmt

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-broker/tern/internal/auth"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Failed logins are logged with the source address and user, never the
// password; an address that keeps failing is answered 429 without a
// password check — even with the right password — until its bucket
// refills, while other addresses are not slowed.
func TestFailedLoginsAreLoggedAndThrottled(t *testing.T) {
	t.Parallel()
	users := auth.NewStore()
	users.Put(auth.User{Name: "admin", PasswordHash: auth.HashPassword("adminpw"), Tags: []string{AdministratorTag}})
	var logs lockedBuffer
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now })
	h := authorize(users, Access{Log: slog.New(slog.NewTextHandler(&logs, nil))}, th,
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	do := func(from, password string) int {
		r := httptest.NewRequest(http.MethodGet, "/api/limits", nil)
		r.RemoteAddr = from
		r.SetBasicAuth("admin", password)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	const secret = "s3cret-guess-123"
	for i := range failBurst {
		if code := do("127.0.0.23:4000", secret); code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i, code)
		}
	}
	if code := do("127.0.0.23:4001", secret); code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", failBurst, code)
	}
	if code := do("127.0.0.23:4002", "adminpw"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password while throttled: %d, want 429 (not checked)", code)
	}
	if code := do("127.0.0.24:4000", "adminpw"); code != http.StatusOK {
		t.Fatalf("another address: %d, want 200", code)
	}
	now = now.Add(failEvery)
	if code := do("127.0.0.23:4003", "adminpw"); code != http.StatusOK {
		t.Fatalf("after the bucket refilled a token: %d, want 200", code)
	}
	out := logs.String()
	if n := strings.Count(out, "HTTP API login failed"); n != failBurst {
		t.Errorf("%d failed-login lines, want %d:\n%s", n, failBurst, out)
	}
	if !strings.Contains(out, "remote=127.0.0.23:4000") || !strings.Contains(out, "user=admin") {
		t.Errorf("failed logins not logged with address and user:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "adminpw") {
		t.Error("the log holds a password")
	}
}

func TestThrottleStaysBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	th := newThrottle(func() time.Time { return now })
	th.max = 100
	for i := range 1000 {
		th.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		if n := th.tracked(); n > th.max {
			t.Fatalf("%d addresses tracked, max %d", n, th.max)
		}
	}
	// A refilled bucket is forgotten first.
	now = now.Add(time.Hour)
	th.fail("192.0.2.1")
	if th.wait("192.0.2.1") != 0 {
		t.Error("one failure throttled an address")
	}
}
