package mgmt

import (
	"context"
	"net/http"
	"slices"

	"github.com/tern-broker/tern/internal/auth"
)

type userKey struct{}

// requestAuth is what access.go learned about a request: its user and the
// store whose permissions say which vhosts that user may see.
type requestAuth struct {
	user  auth.User
	store *auth.Store
}

// withUser records the authenticated user in the request (access.go) for
// the handlers that answer per user: /api/whoami, and the listings a
// management-tagged user sees only for its vhosts.
func withUser(r *http.Request, u auth.User, users *auth.Store) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), userKey{}, requestAuth{u, users}))
}

// requestUser is the authenticated user; ok is false for an open path
// served without credentials.
func requestUser(r *http.Request) (auth.User, bool) {
	a, ok := r.Context().Value(userKey{}).(requestAuth)
	return a.user, ok
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
// A user sees a vhost it has a permission in (RabbitMQ's vhost access).
func vhostVisible(r *http.Request, vhost string) bool {
	if seesAllVHosts(r) {
		return true
	}
	a, ok := r.Context().Value(userKey{}).(requestAuth)
	return ok && a.store != nil && a.store.CanAccess(a.user.Name, vhost)
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
