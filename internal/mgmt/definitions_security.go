package mgmt

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// SecurityDefinitions is the definitions section of users (with their
// limits), permissions, topic permissions, policies and operator
// policies, in RabbitMQ's export shape. Everything is checked in Prepare;
// apply only runs the broker's commands (the document's vhosts are
// declared before sections apply, so references to them are valid).
//
// RabbitMQ's password hashes (rabbit_password_hashing_sha256/sha512/md5)
// cannot be verified by Tern, which stores argon2id only: a new user with
// one is imported without a password — it exists, with its tags,
// permissions and limits, and refuses every password login (logged) until
// an administrator sets its password; each is named in a warning at
// import, in the server's log and in the import's answer (PrepareWarn), so
// the person running it sees it. A user that exists keeps its Tern password.
func SecurityDefinitions(b *broker.Broker, log *slog.Logger) DefinitionsSection {
	if log == nil {
		log = slog.Default()
	}
	return DefinitionsSection{
		Keys:   []string{"users", "permissions", "topic_permissions", "policies", "operator_policies"},
		Export: func() (map[string]any, error) { return exportSecurity(b), nil },
		Prepare: func(raw map[string]json.RawMessage) (func() error, error) {
			apply, _, err := prepareSecurity(b, log, raw)
			return apply, err
		},
		PrepareWarn: func(raw map[string]json.RawMessage) (func() error, []string, error) {
			return prepareSecurity(b, log, raw)
		},
	}
}

// defUser is a user as RabbitMQ 3.13 exports it.
type defUser struct {
	Name             string           `json:"name"`
	PasswordHash     string           `json:"password_hash"`
	HashingAlgorithm string           `json:"hashing_algorithm"`
	Tags             json.RawMessage  `json:"tags"`
	Limits           map[string]int64 `json:"limits"`
}

type defUserOut struct {
	Name             string           `json:"name"`
	PasswordHash     string           `json:"password_hash"`
	HashingAlgorithm string           `json:"hashing_algorithm"`
	Tags             []string         `json:"tags"`
	Limits           map[string]int64 `json:"limits"`
}

func exportSecurity(b *broker.Broker) map[string]any {
	st := b.Users()
	limits := map[string]map[string]int64{}
	for _, l := range st.UserLimits() {
		limits[l.User] = l.Value
	}
	users := []defUserOut{}
	for _, u := range st.Users() {
		l := limits[u.Name]
		if l == nil {
			l = map[string]int64{}
		}
		tags := u.Tags
		if tags == nil {
			tags = []string{}
		}
		users = append(users, defUserOut{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: "rabbit_password_hashing_argon2id", Tags: tags, Limits: l})
	}
	perms := st.Permissions()
	if perms == nil {
		perms = []auth.PermissionEntry{}
	}
	topics := st.TopicPermissions()
	if topics == nil {
		topics = []auth.TopicPermissionEntry{}
	}
	return map[string]any{"users": users, "permissions": perms, "topic_permissions": topics,
		"policies": nonNilPolicies(b.Policies("", false)), "operator_policies": nonNilPolicies(b.Policies("", true))}
}

// argon2Algorithms are the hashing_algorithm values Tern can verify.
var argon2Algorithms = []string{"", "argon2id", "rabbit_password_hashing_argon2id"}

func prepareSecurity(b *broker.Broker, log *slog.Logger, raw map[string]json.RawMessage) (func() error, []string, error) {
	var (
		users    []defUser
		perms    []auth.PermissionEntry
		topics   []auth.TopicPermissionEntry
		policies []broker.Policy
		ops      []broker.Policy
	)
	for key, dst := range map[string]any{"users": &users, "permissions": &perms, "topic_permissions": &topics, "policies": &policies, "operator_policies": &ops} {
		if v, ok := raw[key]; ok && !emptyJSON(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return nil, nil, fmt.Errorf("%s: %v", key, err)
			}
		}
	}
	vhostOK := func(name string) bool { return b.VHost(name) != nil || slices.Contains(docVHosts(raw), name) }
	known := map[string]bool{}
	var cmds []broker.Command
	var unverifiable, warnings []string
	for _, u := range users {
		if u.Name == "" {
			return nil, nil, fmt.Errorf("users: a user without a name")
		}
		tags, err := parseTags(u.Tags)
		if err != nil {
			return nil, nil, fmt.Errorf("user '%s': %v", u.Name, err)
		}
		old, exists := b.Users().Lookup(u.Name)
		hash := u.PasswordHash
		if !slices.Contains(argon2Algorithms, u.HashingAlgorithm) {
			// An existing user keeps its password (the importing
			// administrator, often guest, must not lock itself out).
			hash = old.PasswordHash
			if !exists {
				unverifiable = append(unverifiable, u.Name)
				warnings = append(warnings, fmt.Sprintf("user '%s' was imported without a password and cannot log in until one is set "+
					"(tern ctl change-password %s): its password_hash (%s) is not argon2id, which is all Tern can verify", u.Name, u.Name, u.HashingAlgorithm))
			}
		} else if hash != "" {
			if err := auth.CheckHash(hash); err != nil {
				return nil, nil, fmt.Errorf("user '%s': password_hash: %v", u.Name, err)
			}
		}
		cmds = append(cmds, broker.PutUser{Name: u.Name, Tags: tags, PasswordHash: hash, LoopbackOnly: old.LoopbackOnly})
		known[u.Name] = true
		for name, v := range u.Limits {
			if !slices.Contains(auth.UserLimitNames, name) {
				return nil, nil, fmt.Errorf("user '%s': unknown limit '%s'", u.Name, name)
			}
			cmds = append(cmds, broker.SetUserLimit{User: u.Name, Name: name, Value: max(v, -1)})
		}
	}
	userOK := func(name string) bool {
		_, ok := b.Users().Lookup(name)
		return ok || known[name]
	}
	for _, p := range perms {
		if !userOK(p.User) || !vhostOK(p.VHost) {
			return nil, nil, fmt.Errorf("permission of '%s' in vhost '%s': no such user or vhost", p.User, p.VHost)
		}
		if err := p.Permission.Validate(); err != nil {
			return nil, nil, fmt.Errorf("permission of '%s' in vhost '%s': %v", p.User, p.VHost, err)
		}
		cmds = append(cmds, broker.SetPermission{VHost: p.VHost, User: p.User, Permission: p.Permission})
	}
	for _, t := range topics {
		if !userOK(t.User) || !vhostOK(t.VHost) {
			return nil, nil, fmt.Errorf("topic permission of '%s' in vhost '%s': no such user or vhost", t.User, t.VHost)
		}
		if err := t.TopicPermission.Validate(); err != nil {
			return nil, nil, fmt.Errorf("topic permission of '%s' in vhost '%s': %v", t.User, t.VHost, err)
		}
		cmds = append(cmds, broker.SetTopicPermission{VHost: t.VHost, User: t.User, TopicPermission: t.TopicPermission})
	}
	for i, set := range [][]broker.Policy{policies, ops} {
		for j, p := range set {
			if err := mirroringKeys(p.Definition); err != nil {
				return nil, nil, fmt.Errorf("policy '%s' in vhost '%s': %v (nothing was imported)", p.Name, p.VHost, err)
			}
			if _, ok := p.Definition["queue-version"]; ok && i == 0 {
				warnings = append(warnings, fmt.Sprintf("policy '%s' in vhost '%s': queue-version has no effect in Tern "+
					"(its classic queues have one storage format); the key is kept and ignored", p.Name, p.VHost))
			}
			n, err := broker.ValidatePolicy(p, i == 1)
			if err != nil {
				return nil, nil, fmt.Errorf("policy '%s' in vhost '%s': %v", p.Name, p.VHost, err)
			}
			if !vhostOK(n.VHost) {
				return nil, nil, fmt.Errorf("policy '%s': no vhost '%s'", p.Name, p.VHost)
			}
			set[j] = n
		}
	}
	if len(cmds) == 0 && len(policies) == 0 && len(ops) == 0 {
		return nil, nil, nil
	}
	return func() error {
		for _, name := range unverifiable {
			log.Warn("definitions import: user imported without a password (its hash is not argon2id and cannot be verified); set a new password to let it log in", "user", name)
		}
		for _, c := range cmds {
			if err := b.Change(c); err != nil {
				return err
			}
		}
		if err := b.ApplyPolicies(policies, false); err != nil {
			return err
		}
		return b.ApplyPolicies(ops, true)
	}, warnings, nil
}

// docVHosts are the names of the vhosts the document declares (given to
// every section under "vhosts", see DefinitionsSection.Prepare).
func docVHosts(raw map[string]json.RawMessage) []string {
	var vs []defVHost
	_ = json.Unmarshal(raw["vhosts"], &vs)
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return names
}
