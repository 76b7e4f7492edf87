package mgmt

import (
	"net"
	"net/http"
	"slices"

	"github.com/tern-broker/tern/internal/auth"
)

// AdministratorTag is the user tag that allows changing state through the
// HTTP API, as RabbitMQ's management plugin requires it. The default guest
// user carries it (RabbitMQ's guest is an administrator, from loopback only).
const AdministratorTag = "administrator"

// requireAdmin lets reads (GET, HEAD) through and demands an administrator's
// HTTP basic credentials for every other method, since every other method
// changes the broker: 401 with a challenge for missing or wrong credentials,
// 403 for a valid user without the administrator tag. The user's loopback
// restriction applies to the HTTP client's address as it does to AMQP.
func requireAdmin(users *auth.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		name, password, ok := r.BasicAuth()
		if !ok || users == nil {
			unauthorized(w, "administrator credentials required (HTTP basic auth)")
			return
		}
		u, err := users.Authenticate(name, password, remoteAddr(r))
		if err != nil {
			unauthorized(w, "login refused")
			return
		}
		if !slices.Contains(u.Tags, AdministratorTag) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "user '" + name + "' is not an administrator (needs the tag " + AdministratorTag + ")"})
			return
		}
		next.ServeHTTP(w, r)
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
