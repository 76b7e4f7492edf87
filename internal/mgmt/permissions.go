package mgmt

import (
	"net/http"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// RabbitMQ's HTTP API for permissions, topic permissions and limits:
// /api/permissions, /api/topic-permissions, /api/vhost-limits and
// /api/user-limits, with RabbitMQ's paths and bodies. An expression that
// does not compile is refused with 400 and the reason.

func handlePermissions(mux *http.ServeMux, rt *segRouter, a *secAPI) {
	mux.HandleFunc("GET /api/permissions", a.admin(func(w http.ResponseWriter, _ *http.Request) {
		a.listPermissions(w, func(auth.PermissionEntry) bool { return true })
	}))
	rt.handle("GET /api/permissions/{vhost}/{user}", a.admin(a.getPermission))
	rt.handle("PUT /api/permissions/{vhost}/{user}", a.admin(a.putPermission))
	rt.handle("DELETE /api/permissions/{vhost}/{user}", a.admin(a.deletePermission))
	mux.HandleFunc("GET /api/topic-permissions", a.admin(func(w http.ResponseWriter, _ *http.Request) {
		a.listTopicPermissions(w, func(auth.TopicPermissionEntry) bool { return true })
	}))
	rt.handle("GET /api/topic-permissions/{vhost}/{user}", a.admin(a.getTopicPermissions))
	rt.handle("PUT /api/topic-permissions/{vhost}/{user}", a.admin(a.putTopicPermission))
	rt.handle("DELETE /api/topic-permissions/{vhost}/{user}", a.admin(a.deleteTopicPermissions))
	mux.HandleFunc("GET /api/vhost-limits", a.admin(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.b.Users().VHostLimits())
	}))
	rt.handle("GET /api/vhost-limits/{vhost}", a.admin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, filterLimits(a.b.Users().VHostLimits(), func(l auth.LimitEntry) bool { return l.VHost == r.PathValue("vhost") }))
	}))
	rt.handle("PUT /api/vhost-limits/{vhost}/{name}", a.admin(a.putVHostLimit))
	rt.handle("DELETE /api/vhost-limits/{vhost}/{name}", a.admin(a.deleteVHostLimit))
	mux.HandleFunc("GET /api/user-limits", a.admin(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.b.Users().UserLimits())
	}))
	rt.handle("GET /api/user-limits/{user}", a.admin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, filterLimits(a.b.Users().UserLimits(), func(l auth.LimitEntry) bool { return l.User == r.PathValue("user") }))
	}))
	rt.handle("PUT /api/user-limits/{user}/{name}", a.admin(a.putUserLimit))
	rt.handle("DELETE /api/user-limits/{user}/{name}", a.admin(a.deleteUserLimit))
}

func (a *secAPI) listPermissions(w http.ResponseWriter, keep func(auth.PermissionEntry) bool) {
	out := []auth.PermissionEntry{}
	for _, p := range a.b.Users().Permissions() {
		if keep(p) {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *secAPI) listTopicPermissions(w http.ResponseWriter, keep func(auth.TopicPermissionEntry) bool) {
	out := []auth.TopicPermissionEntry{}
	for _, p := range a.b.Users().TopicPermissions() {
		if keep(p) {
			out = append(out, p)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func filterLimits(ls []auth.LimitEntry, keep func(auth.LimitEntry) bool) []auth.LimitEntry {
	out := []auth.LimitEntry{}
	for _, l := range ls {
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}

// userAndVHost checks that the path's user and vhost exist, answering 400
// otherwise (RabbitMQ answers 400 for a permission naming a missing user
// or vhost).
func (a *secAPI) userAndVHost(w http.ResponseWriter, r *http.Request) (user, vhost string, ok bool) {
	user, vhost = r.PathValue("user"), r.PathValue("vhost")
	if _, found := a.b.Users().Lookup(user); !found {
		badRequest(w, "no user '"+user+"'")
		return "", "", false
	}
	if a.b.VHost(vhost) == nil {
		badRequest(w, "no vhost '"+vhost+"'")
		return "", "", false
	}
	return user, vhost, true
}

func (a *secAPI) getPermission(w http.ResponseWriter, r *http.Request) {
	user, vhost := r.PathValue("user"), r.PathValue("vhost")
	g := a.b.Users().Grant(user, vhost)
	if g == nil {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, auth.PermissionEntry{User: user, VHost: vhost, Permission: g.Permission})
}

// putPermission sets a user's permission in a vhost: 201 when new, 204
// when replaced.
func (a *secAPI) putPermission(w http.ResponseWriter, r *http.Request) {
	user, vhost, ok := a.userAndVHost(w, r)
	if !ok {
		return
	}
	var p auth.Permission
	if !decodeBody(w, r, &p) {
		return
	}
	if err := p.Validate(); err != nil {
		badRequest(w, err.Error())
		return
	}
	status := http.StatusCreated
	if a.b.Users().Grant(user, vhost) != nil {
		status = http.StatusNoContent
	}
	a.change(w, status, broker.SetPermission{VHost: vhost, User: user, Permission: p})
}

func (a *secAPI) deletePermission(w http.ResponseWriter, r *http.Request) {
	user, vhost := r.PathValue("user"), r.PathValue("vhost")
	if a.b.Users().Grant(user, vhost) == nil {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.ClearPermission{VHost: vhost, User: user})
}

func (a *secAPI) getTopicPermissions(w http.ResponseWriter, r *http.Request) {
	user, vhost := r.PathValue("user"), r.PathValue("vhost")
	var out []auth.TopicPermissionEntry
	for _, p := range a.b.Users().TopicPermissions() {
		if p.User == user && p.VHost == vhost {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		notFound(w)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// putTopicPermission sets a user's topic permission for the body's
// exchange: 201 when new, 204 when replaced.
func (a *secAPI) putTopicPermission(w http.ResponseWriter, r *http.Request) {
	user, vhost, ok := a.userAndVHost(w, r)
	if !ok {
		return
	}
	var t auth.TopicPermission
	if !decodeBody(w, r, &t) {
		return
	}
	if err := t.Validate(); err != nil {
		badRequest(w, err.Error())
		return
	}
	status := http.StatusCreated
	for _, p := range a.b.Users().TopicPermissions() {
		if p.User == user && p.VHost == vhost && p.Exchange == t.Exchange {
			status = http.StatusNoContent
		}
	}
	a.change(w, status, broker.SetTopicPermission{VHost: vhost, User: user, TopicPermission: t})
}

// deleteTopicPermissions removes the user's topic permissions in the vhost:
// all of them, or the one of ?exchange=.
func (a *secAPI) deleteTopicPermissions(w http.ResponseWriter, r *http.Request) {
	user, vhost, exchange := r.PathValue("user"), r.PathValue("vhost"), r.URL.Query().Get("exchange")
	found := false
	for _, p := range a.b.Users().TopicPermissions() {
		found = found || (p.User == user && p.VHost == vhost && (exchange == "" || p.Exchange == exchange))
	}
	if !found {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.ClearTopicPermission{VHost: vhost, User: user, Exchange: exchange})
}

// limitBody is RabbitMQ's limit body: {"value": N}; a negative value
// removes the limit, as in RabbitMQ.
type limitBody struct {
	Value *int64 `json:"value"`
}

func (a *secAPI) limitValue(w http.ResponseWriter, r *http.Request, scope string) (string, int64, bool) {
	name := r.PathValue("name")
	if err := auth.ValidLimit(scope, name); err != nil {
		badRequest(w, err.Error())
		return "", 0, false
	}
	var body limitBody
	if !decodeBody(w, r, &body) {
		return "", 0, false
	}
	if body.Value == nil {
		badRequest(w, "value is required: {\"value\": N}")
		return "", 0, false
	}
	return name, *body.Value, true
}

func (a *secAPI) putVHostLimit(w http.ResponseWriter, r *http.Request) {
	vhost := r.PathValue("vhost")
	if a.b.VHost(vhost) == nil {
		badRequest(w, "no vhost '"+vhost+"'")
		return
	}
	name, v, ok := a.limitValue(w, r, "vhost")
	if !ok {
		return
	}
	a.change(w, http.StatusNoContent, broker.SetVHostLimit{VHost: vhost, Name: name, Value: max(v, -1)})
}

func (a *secAPI) deleteVHostLimit(w http.ResponseWriter, r *http.Request) {
	vhost, name := r.PathValue("vhost"), r.PathValue("name")
	if a.b.Users().VHostLimit(vhost, name) < 0 {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.SetVHostLimit{VHost: vhost, Name: name, Value: -1})
}

func (a *secAPI) putUserLimit(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if _, ok := a.b.Users().Lookup(user); !ok {
		badRequest(w, "no user '"+user+"'")
		return
	}
	name, v, ok := a.limitValue(w, r, "user")
	if !ok {
		return
	}
	a.change(w, http.StatusNoContent, broker.SetUserLimit{User: user, Name: name, Value: max(v, -1)})
}

func (a *secAPI) deleteUserLimit(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("name")
	if a.b.Users().UserLimit(user, name) < 0 {
		notFound(w)
		return
	}
	a.change(w, http.StatusNoContent, broker.SetUserLimit{User: user, Name: name, Value: -1})
}
