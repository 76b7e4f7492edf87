package mgmt

import (
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tern-broker/tern/internal/auth"
)

// AdministratorTag is the user tag that allows changing state through the
// HTTP API, as RabbitMQ's management plugin requires it. The default guest
// user carries it (RabbitMQ's guest is an administrator, from loopback only).
const AdministratorTag = "administrator"

// readTags are the tags that may read the HTTP API (RabbitMQ's management
// UI tags; every one of them includes reading).
var readTags = []string{"monitoring", "management", "policymaker", AdministratorTag}

// Access says who may use the HTTP endpoints.
type Access struct {
	// OpenPaths are served to GET and HEAD without credentials (the
	// configuration allows /healthz and /metrics); none by default.
	OpenPaths []string
	// Log gets one line per failed login: source address, user name, path
	// and the reason — never the password.
	Log *slog.Logger
}

// authorize wraps next with HTTP basic authentication against the users:
// every request needs a user tagged monitoring, management, policymaker
// or administrator; a change, and the profiler, an administrator unless
// its handler authorizes it per vhost permission (authz.go,
// delegatedWrite). Missing or wrong credentials get 401 with a Basic
// challenge, a user without the tag 403 with RabbitMQ's not_authorised
// body, and an address with too many recent failures 429
// without its credentials even being checked (throttle.go), which also
// keeps argon2 off the CPU during a password-guessing run. A user's
// loopback restriction applies to the HTTP client's address as it does to
// AMQP.
func authorize(users *auth.Store, a Access, th *throttle, next http.Handler) http.Handler {
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		if read && slices.Contains(a.OpenPaths, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		name, password, ok := r.BasicAuth()
		if !ok || users == nil {
			unauthorized(w, "credentials required (HTTP basic auth)")
			return
		}
		host := sourceHost(r)
		if wait := th.wait(host); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed logins from this address; retry later"})
			return
		}
		u, err := users.Authenticate(name, password, remoteAddr(r))
		if err != nil {
			th.fail(host)
			log.Warn("HTTP API login failed", "remote", r.RemoteAddr, "user", name, "method", r.Method, "path", r.URL.Path, "reason", err.Error())
			unauthorized(w, "login refused")
			return
		}
		if !slices.ContainsFunc(u.Tags, func(t string) bool { return slices.Contains(readTags, t) }) {
			notAuthorised(w, "Not management user")
			return
		}
		if (!read && !delegatedWrite(r.Method, r.URL.Path)) || strings.HasPrefix(r.URL.Path, "/debug/") {
			if !slices.Contains(u.Tags, AdministratorTag) {
				notAuthorised(w, "Not administrator user")
				return
			}
		}
		next.ServeHTTP(w, withUser(r, u, users))
	})
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="tern", charset="UTF-8"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": msg})
}

// remoteAddr is the client's address as a net.Addr, for the loopback check.
func remoteAddr(r *http.Request) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		return nil
	}
	return a
}

// sourceHost is the client's IP address without the port: failures are
// counted per address, not per connection.
func sourceHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}
