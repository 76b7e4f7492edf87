package auth

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Permission is a user's configure, write and read regular expressions in
// one vhost, RabbitMQ's model: an operation on a resource (an exchange or
// a queue, by name) is allowed when the expression of its kind matches
// the name anywhere (unanchored, as RabbitMQ's). An empty expression
// matches nothing, as in RabbitMQ ("" and "^$" both deny).
//
// The expressions are Go's RE2 syntax, not Erlang's PCRE: look-arounds and
// back-references are refused as invalid.
type Permission struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// TopicPermission restricts the routing keys a user may publish with
// (Write) and bind or subscribe with (Read) on one topic exchange, with
// the variables {username}, {vhost} and {client_id} (MQTT) expanded.
type TopicPermission struct {
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// Access is the kind of an operation on a resource.
type Access uint8

// Access kinds, RabbitMQ's.
const (
	Configure Access = iota
	Write
	Read
)

func (a Access) String() string {
	switch a {
	case Configure:
		return "configure"
	case Write:
		return "write"
	}
	return "read"
}

// CompilePattern compiles one permission expression; "" matches nothing
// (nil).
func CompilePattern(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", expr, err)
	}
	return re, nil
}

// Validate reports the first expression of p that does not compile.
func (p Permission) Validate() error {
	for _, e := range []string{p.Configure, p.Write, p.Read} {
		if _, err := CompilePattern(e); err != nil {
			return err
		}
	}
	return nil
}

// Validate reports an expression of t that does not compile with its
// variables expanded, or a missing exchange.
func (t TopicPermission) Validate() error {
	if t.Exchange == "" {
		return fmt.Errorf("topic permission: exchange is required")
	}
	for _, e := range []string{t.Write, t.Read} {
		if _, err := CompilePattern(expandTopic(e, "u", "v", "c", nil)); err != nil {
			return err
		}
	}
	return nil
}

// expandTopic substitutes the variables of a topic permission, each
// value made a regular expression by quote. The values are quoted, so a
// user named "a.b" matches only "a.b" (RabbitMQ substitutes them unquoted:
// a dot in a name matches any character there).
func expandTopic(expr, user, vhost, clientID string, quote func(string) string) string {
	if !strings.Contains(expr, "{") {
		return expr
	}
	if quote == nil {
		quote = regexp.QuoteMeta
	}
	return strings.NewReplacer("{username}", quote(user), "{vhost}", quote(vhost),
		"{client_id}", quote(clientID)).Replace(expr)
}

// NoMatch is a regular expression that matches nothing, for a variable
// whose value cannot be matched safely.
const NoMatch = `[^\x00-\x{10FFFF}]`

// Grant is a user's compiled permission in one vhost. It is immutable: a
// change makes a new one (Store.Generation moves), so a connection may keep
// it and a channel may cache its decisions.
type Grant struct {
	Permission
	re [3]*regexp.Regexp
}

func newGrant(p Permission) *Grant {
	g := &Grant{Permission: p}
	for i, e := range []string{p.Configure, p.Write, p.Read} {
		// An expression that does not compile (validated before its
		// command was made, so only a hand-edited log) matches nothing.
		g.re[i], _ = CompilePattern(e)
	}
	return g
}

// Allows says whether the grant allows access a on the resource name. A
// nil grant allows nothing.
func (g *Grant) Allows(a Access, name string) bool {
	if g == nil {
		return false
	}
	re := g.re[a]
	return re != nil && re.MatchString(name)
}

// TopicRules are a user's compiled topic permissions in one vhost for one
// connection (client id expanded). Exchanges without a topic permission
// are unrestricted, as in RabbitMQ.
type TopicRules struct {
	byExchange map[string]*topicRule
}

type topicRule struct {
	write, read *regexp.Regexp
}

// Allows says whether routing key may be used with access a (Write:
// publish; Read: bind, subscribe) on exchange. A nil TopicRules allows
// everything.
func (t *TopicRules) Allows(a Access, exchange, key string) bool {
	if t == nil {
		return true
	}
	r, ok := t.byExchange[exchange]
	if !ok {
		return true
	}
	re := r.read
	if a == Write {
		re = r.write
	}
	return re != nil && re.MatchString(key)
}

// Restricts says whether exchange has a topic permission at all, so a
// caller can skip the check (and a cache) for the others.
func (t *TopicRules) Restricts(exchange string) bool {
	if t == nil {
		return false
	}
	_, ok := t.byExchange[exchange]
	return ok
}

// PermissionEntry is one user's permission in one vhost.
type PermissionEntry struct {
	User  string `json:"user"`
	VHost string `json:"vhost"`
	Permission
}

// TopicPermissionEntry is one topic permission.
type TopicPermissionEntry struct {
	User  string `json:"user"`
	VHost string `json:"vhost"`
	TopicPermission
}

func sortPerms(ps []PermissionEntry) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].VHost != ps[j].VHost {
			return ps[i].VHost < ps[j].VHost
		}
		return ps[i].User < ps[j].User
	})
}

func sortTopics(ts []TopicPermissionEntry) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.VHost != b.VHost {
			return a.VHost < b.VHost
		}
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Exchange < b.Exchange
	})
}
