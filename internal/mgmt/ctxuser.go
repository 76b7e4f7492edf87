package mgmt

import (
	"context"
	"net/http"
	"slices"

	"github.com/tern-broker/tern/internal/auth"
)

type userKey struct{}

// withUser records the authenticated user in the request (access.go) for
// the handlers that answer per user: /api/whoami, and the listings a
// management-tagged user sees only for its vhosts.
func withUser(r *http.Request, u auth.User) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), userKey{}, u))
}

// requestUser is the authenticated user; ok is false for an open path
// served without credentials.
func requestUser(r *http.Request) (auth.User, bool) {
	u, ok := r.Context().Value(userKey{}).(auth.User)
	return u, ok
}

// seesAllVHosts says whether the request's user sees every vhost in
// listings: RabbitMQ's monitoring and administrator tags do; management
// and policymaker users see the vhosts they may access.
func seesAllVHosts(r *http.Request) bool {
	u, ok := requestUser(r)
	if !ok {
		return false
	}
	return slices.ContainsFunc(u.Tags, func(t string) bool { return t == AdministratorTag || t == "monitoring" })
}

// vhostVisible says whether the request's user may see vhost's objects.
// The vhost access rule is the user's (auth.User.CanAccess): the seam where
// per-vhost permissions plug in.
func vhostVisible(r *http.Request, vhost string) bool {
	if seesAllVHosts(r) {
		return true
	}
	u, ok := requestUser(r)
	return ok && u.CanAccess(vhost)
}

// requireAdmin answers 403 unless the request's user is an administrator:
// reads that RabbitMQ reserves to them (the definitions export holds every
// user's password hash).
func requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	if u, ok := requestUser(r); ok && slices.Contains(u.Tags, AdministratorTag) {
		return true
	}
	writeError(w, http.StatusForbidden, "not_authorised", "Not administrator user")
	return false
}
