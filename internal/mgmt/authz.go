package mgmt

import (
	"net/http"
	"slices"
	"strings"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// Authorization per user tag, RabbitMQ's management model
// (docs/http-api.md, "Authorization"):
//
//   - no tag: no access to the API (403 "Not management user");
//   - management: the objects of the vhosts it has a permission in, and its
//     own connections and channels. Declaring, deleting, purging,
//     publishing, getting and binding are allowed as its configure, write
//     and read expressions allow them over AMQP (RabbitMQ's management
//     plugin acts as the user on an AMQP channel, so the same checks
//     apply); it may close its own connections;
//   - policymaker: management, plus the policies of its vhosts;
//   - monitoring: management, plus reading everything: every vhost's
//     objects, every connection and channel, the node;
//   - administrator: everything, whatever its permissions.
//
// The access layer (access.go) lets any tagged user through to the
// handlers of delegatedWrite's paths, which then check the vhost
// permission of each change here; every other change needs an
// administrator there.

// The management tags below administrator.
const (
	tagManagement  = "management"
	tagPolicymaker = "policymaker"
	tagMonitoring  = "monitoring"
)

// delegatedWrite says whether a change (a method other than GET and
// HEAD) on path is authorized by its handler, per vhost permission,
// rather than reserved to administrators by the access layer.
func delegatedWrite(method, path string) bool {
	for _, p := range []string{"/api/queues/", "/api/exchanges/", "/api/bindings/", "/api/policies/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return method == http.MethodDelete && strings.HasPrefix(path, "/api/connections/")
}

// userHas says whether the request's user has one of tags (administrator
// always counts).
func userHas(r *http.Request, tags ...string) bool {
	u, ok := requestUser(r)
	if !ok {
		return false
	}
	return slices.ContainsFunc(u.Tags, func(t string) bool { return t == AdministratorTag || slices.Contains(tags, t) })
}

func isAdmin(r *http.Request) bool { return userHas(r) }

// notAuthorised answers 403 with RabbitMQ's not_authorised body.
func notAuthorised(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusForbidden, "not_authorised", reason)
}

// permitted reports whether the request's user may have access a to the
// resource kind ("queue", "exchange") name in vhost, answering 403 when
// not. Administrators may; any other user needs a permission in vhost
// whose expression of that kind matches the name, as an AMQP client
// would (the default exchange is "amq.default").
func permitted(w http.ResponseWriter, r *http.Request, vhost string, a auth.Access, kind, name string) bool {
	if isAdmin(r) {
		return true
	}
	if kind == "exchange" && name == "" {
		name = "amq.default"
	}
	ra, ok := r.Context().Value(userKey{}).(requestAuth)
	if ok && ra.store != nil && ra.store.Grant(ra.user.Name, vhost).Allows(a, name) {
		return true
	}
	notAuthorised(w, a.String()+" access to "+kind+" '"+name+"' in vhost '"+vhost+"' refused for user '"+ra.user.Name+"'")
	return false
}

// topicPermitted reports whether the request's user's topic permission
// lets it use routing key with access a (Write: publish, Read: bind) on
// exchange x of vhost, answering 403 when not. Topic permissions apply to
// topic exchanges only, as in RabbitMQ; administrators are not held.
func topicPermitted(w http.ResponseWriter, r *http.Request, vhost string, x *broker.Exchange, a auth.Access, key string) bool {
	if isAdmin(r) || x.Config().Type != broker.TypeTopic {
		return true
	}
	ra, ok := r.Context().Value(userKey{}).(requestAuth)
	if !ok || ra.store == nil {
		notAuthorised(w, "Access refused.")
		return false
	}
	if ra.store.TopicRules(ra.user.Name, vhost, "", nil).Allows(a, x.Name(), key) {
		return true
	}
	notAuthorised(w, a.String()+" access to topic '"+key+"' in exchange '"+x.Name()+"' in vhost '"+vhost+"' refused for user '"+ra.user.Name+"'")
	return false
}

// requireMonitor answers 403 unless the request's user is tagged
// monitoring or administrator: node-level data (RabbitMQ's
// is_authorized_monitor).
func requireMonitor(w http.ResponseWriter, r *http.Request) bool {
	if userHas(r, tagMonitoring) {
		return true
	}
	notAuthorised(w, "Not monitor user")
	return false
}

// policyAccess reports whether the request's user may read or change the
// policies (operator policies when op) of vhost ("" for the listing of
// every vhost), answering 403 when not: policies are for policymaker
// users in the vhosts they may access and for administrators, operator
// policies for administrators only (RabbitMQ's is_authorized_policies and
// is_authorized_admin).
func policyAccess(w http.ResponseWriter, r *http.Request, vhost string, op bool) bool {
	if isAdmin(r) {
		return true
	}
	if op {
		notAuthorised(w, "Not administrator user")
		return false
	}
	if !userHas(r, tagPolicymaker) {
		notAuthorised(w, "User not authorised to access object")
		return false
	}
	if vhost != "" && !canAccess(r, vhost) {
		notAuthorised(w, "Access refused.")
		return false
	}
	return true
}

// canAccess says whether the request's user has a permission in vhost.
func canAccess(r *http.Request, vhost string) bool {
	ra, ok := r.Context().Value(userKey{}).(requestAuth)
	return ok && ra.store != nil && ra.store.CanAccess(ra.user.Name, vhost)
}
