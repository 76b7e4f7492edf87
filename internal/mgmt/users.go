package mgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// RabbitMQ's HTTP API for users and vhosts, with its paths and JSON
// shapes: GET /api/users, GET/PUT/DELETE /api/users/{name}, GET
// /api/vhosts, GET/PUT/DELETE /api/vhosts/{name}. Every change is a
// broker command (broker/security.go), durable and, in a cluster,
// replicated before the reply. Reading users or permissions needs an
// administrator, as in RabbitMQ (authorize lets monitoring users read
// other endpoints); changing anything needs one anyway.

// secAPI serves the users*.go and permissions*.go endpoints.
type secAPI struct {
	b *broker.Broker
}

// handleSecurity registers the users, vhosts, permissions, topic
// permissions and limits endpoints.
func handleSecurity(mux *http.ServeMux, b *broker.Broker) {
	if b == nil {
		return
	}
	a := &secAPI{b: b}
	rt := &segRouter{}
	for _, prefix := range []string{"/api/users/", "/api/vhosts/", "/api/permissions/", "/api/topic-permissions/", "/api/vhost-limits/", "/api/user-limits/"} {
		mux.Handle(prefix+"{rest...}", rt)
	}
	mux.HandleFunc("GET /api/users", a.admin(a.listUsers))
	rt.handle("GET /api/users/{name}", a.admin(a.getUser))
	rt.handle("PUT /api/users/{name}", a.admin(a.putUser))
	rt.handle("DELETE /api/users/{name}", a.admin(a.deleteUser))
	rt.handle("GET /api/users/{name}/permissions", a.admin(a.userPermissions))
	rt.handle("GET /api/users/{name}/topic-permissions", a.admin(a.userTopicPermissions))
	mux.HandleFunc("GET /api/vhosts", a.listVHosts)
	rt.handle("GET /api/vhosts/{name}", a.getVHost)
	rt.handle("PUT /api/vhosts/{name}", a.admin(a.putVHost))
	rt.handle("DELETE /api/vhosts/{name}", a.admin(a.deleteVHost))
	rt.handle("GET /api/vhosts/{name}/permissions", a.admin(a.vhostPermissions))
	rt.handle("GET /api/vhosts/{name}/topic-permissions", a.admin(a.vhostTopicPermissions))
	handlePermissions(mux, rt, a) // permissions.go
}

// admin refuses a request whose (already authenticated) user is not an
// administrator: reading users and permissions is an administrator's, as
// in RabbitMQ.
func (a *secAPI) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, _, _ := r.BasicAuth()
		u, ok := a.b.Users().Lookup(name)
		if !ok || !slices.Contains(u.Tags, AdministratorTag) {
			writeError(w, http.StatusForbidden, "not_authorised", "user '"+name+"' is not an administrator")
			return
		}
		h(w, r)
	}
}

// change applies a command and answers status, or 500 with the reason.
func (a *secAPI) change(w http.ResponseWriter, status int, cs ...broker.Command) {
	for _, c := range cs {
		if err := a.b.Change(c); err != nil {
			writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
			return
		}
	}
	w.WriteHeader(status)
}

// userJSON is a user as RabbitMQ's API shows it: the argon2id hash (never
// a password) and tags.
type userJSON struct {
	Name             string           `json:"name"`
	PasswordHash     string           `json:"password_hash"`
	HashingAlgorithm string           `json:"hashing_algorithm"`
	Tags             []string         `json:"tags"`
	Limits           map[string]int64 `json:"limits"`
	LoopbackOnly     bool             `json:"loopback_only"`
}

func (a *secAPI) userJSON(u auth.User) userJSON {
	tags := u.Tags
	if tags == nil {
		tags = []string{}
	}
	limits := map[string]int64{}
	for _, n := range auth.UserLimitNames {
		if v := a.b.Users().UserLimit(u.Name, n); v >= 0 {
			limits[n] = v
		}
	}
	return userJSON{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: "argon2id", Tags: tags, Limits: limits, LoopbackOnly: u.LoopbackOnly}
}

func (a *secAPI) listUsers(w http.ResponseWriter, _ *http.Request) {
	out := []userJSON{}
	for _, u := range a.b.Users().Users() {
		out = append(out, a.userJSON(u))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *secAPI) getUser(w http.ResponseWriter, r *http.Request) {
	u, ok := a.b.Users().Lookup(r.PathValue("name"))
	if !ok {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, a.userJSON(u))
}

// putUserBody is RabbitMQ's PUT /api/users/{name} body. Tags come as a
// comma-separated string (RabbitMQ 3.x) or a list (RabbitMQ 4).
type putUserBody struct {
	Password         *string         `json:"password"`
	PasswordHash     *string         `json:"password_hash"`
	HashingAlgorithm string          `json:"hashing_algorithm"`
	Tags             json.RawMessage `json:"tags"`
	LoopbackOnly     *bool           `json:"loopback_only"` // Tern's: logins from loopback addresses only
}

// parseTags reads tags as a string ("a,b") or a list.
func parseTags(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		var out []string
		for _, t := range strings.Split(s, ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, t)
			}
		}
		return out, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, errors.New("tags must be a string (\"administrator,monitoring\") or a list of strings")
	}
	return l, nil
}

// putUser creates or changes a user: 201 when created, 204 when changed,
// as RabbitMQ answers. A password is hashed with argon2id here; a
// password_hash must already be argon2id (Tern stores no other kind: a
// RabbitMQ SHA-256 hash cannot be converted, the password must be set
// again). "password_hash": "" makes a user without a password (client
// certificate login only). Without either, an existing user keeps its
// password.
func (a *secAPI) putUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		badRequest(w, "user name is empty")
		return
	}
	var body putUserBody
	if !decodeBody(w, r, &body) {
		return
	}
	tags, err := parseTags(body.Tags)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	old, exists := a.b.Users().Lookup(name)
	c := broker.PutUser{Name: name, Tags: tags, PasswordHash: old.PasswordHash, LoopbackOnly: old.LoopbackOnly}
	switch {
	case body.Password != nil && body.PasswordHash != nil:
		badRequest(w, "give password or password_hash, not both")
		return
	case body.Password != nil:
		c.PasswordHash = auth.HashPassword(*body.Password)
	case body.PasswordHash != nil:
		if alg := body.HashingAlgorithm; alg != "" && alg != "argon2id" && alg != "rabbit_password_hashing_argon2id" {
			badRequest(w, fmt.Sprintf("hashing_algorithm %q is not supported: Tern stores argon2id hashes only (send the password, or a hash from tern hash-password)", alg))
			return
		}
		if *body.PasswordHash != "" {
			if err := auth.CheckHash(*body.PasswordHash); err != nil {
				badRequest(w, "password_hash: "+err.Error())
				return
			}
		}
		c.PasswordHash = *body.PasswordHash
	case !exists:
		badRequest(w, "password or password_hash is required to create a user")
		return
	}
	if body.LoopbackOnly != nil {
		c.LoopbackOnly = *body.LoopbackOnly
	}
	status := http.StatusNoContent
	if !exists {
		status = http.StatusCreated
	}
	a.change(w, status, c)
}

func (a *secAPI) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := a.b.Users().Lookup(name); !ok {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.DeleteUser{Name: name})
}

func (a *secAPI) userPermissions(w http.ResponseWriter, r *http.Request) {
	a.listPermissions(w, func(p auth.PermissionEntry) bool { return p.User == r.PathValue("name") })
}

func (a *secAPI) userTopicPermissions(w http.ResponseWriter, r *http.Request) {
	a.listTopicPermissions(w, func(p auth.TopicPermissionEntry) bool { return p.User == r.PathValue("name") })
}

// vhostJSON is a vhost as RabbitMQ's API shows it (the fields Tern has).
type vhostJSON struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Tracing     bool     `json:"tracing"`
}

// listVHosts lists the vhosts the user may see: every one for monitoring
// and administrator users, those it has a permission in for the others
// (RabbitMQ's rule).
func (a *secAPI) listVHosts(w http.ResponseWriter, r *http.Request) {
	out := []vhostJSON{}
	for _, v := range a.b.VHosts() {
		if vhostVisible(r, v.Name()) {
			out = append(out, vhostJSON{Name: v.Name(), Tags: []string{}})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *secAPI) getVHost(w http.ResponseWriter, r *http.Request) {
	v := a.b.VHost(r.PathValue("name"))
	if v == nil {
		notFound(w)
		return
	}
	if !vhostVisible(r, v.Name()) {
		notAuthorised(w, "Access refused.")
		return
	}
	writeJSON(w, http.StatusOK, vhostJSON{Name: v.Name(), Tags: []string{}})
}

// putVHost creates a vhost (201), or leaves an existing one (204). The body
// (description, tags, default queue type) may be absent; its description
// and tags are not kept, and a default queue type other than classic is
// refused (vhost_queue_type.go).
func (a *secAPI) putVHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" {
		badRequest(w, "vhost name is empty")
		return
	}
	var body map[string]json.RawMessage
	if !decodeBody(w, r, &body) {
		return
	}
	if reason := vhostQueueTypeRefusal(body); reason != "" {
		badRequest(w, "vhost '"+name+"': "+reason)
		return
	}
	if a.b.VHost(name) != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if a.b.AddVHost(name) == nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "the vhost could not be created")
		return
	}
	// As RabbitMQ's HTTP API does, the user creating a vhost gets full
	// permissions in it (else even the administrator could not use it).
	creator, ok := requestUser(r)
	if !ok {
		creator.Name, _, _ = r.BasicAuth()
	}
	if creator.Name != "" {
		a.change(w, http.StatusCreated, broker.SetPermission{VHost: name, User: creator.Name,
			Permission: auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}})
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// deleteVHost deletes a vhost: its connections are closed, its queues and
// their messages deleted, its permissions and limits forgotten.
func (a *secAPI) deleteVHost(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if a.b.VHost(name) == nil {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.DeleteVHost{Name: name})
}

func (a *secAPI) vhostPermissions(w http.ResponseWriter, r *http.Request) {
	if a.b.VHost(r.PathValue("name")) == nil {
		notFound(w)
		return
	}
	a.listPermissions(w, func(p auth.PermissionEntry) bool { return p.VHost == r.PathValue("name") })
}

func (a *secAPI) vhostTopicPermissions(w http.ResponseWriter, r *http.Request) {
	if a.b.VHost(r.PathValue("name")) == nil {
		notFound(w)
		return
	}
	a.listTopicPermissions(w, func(p auth.TopicPermissionEntry) bool { return p.VHost == r.PathValue("name") })
}
