package auth

import (
	"sort"
)

// Generation moves whenever users, permissions or limits change.
func (s *Store) Generation() uint64 { return s.gen.Load() }

// Delete removes a user with its permissions, topic permissions and
// limits, as RabbitMQ's delete_user does.
func (s *Store) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, name)
	delete(s.verified, name)
	delete(s.grants, name)
	delete(s.topics, name)
	delete(s.ulimits, name)
	s.gen.Add(1)
}

// Users lists the users by name.
func (s *Store) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetPermission sets user's permission in vhost (p validated by the
// caller; an expression that does not compile matches nothing).
func (s *Store) SetPermission(user, vhost string, p Permission) {
	g := newGrant(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grants[user] == nil {
		s.grants[user] = map[string]*Grant{}
	}
	s.grants[user][vhost] = g
	s.gen.Add(1)
}

// ClearPermission removes user's permission in vhost: the user may no
// longer open it.
func (s *Store) ClearPermission(user, vhost string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.grants[user], vhost)
	if len(s.grants[user]) == 0 {
		delete(s.grants, user)
	}
	s.gen.Add(1)
}

// Grant returns user's compiled permission in vhost, nil if it has none
// (the user may not open the vhost).
func (s *Store) Grant(user, vhost string) *Grant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.grants[user][vhost]
}

// CanAccess says whether user may open vhost: it has a permission there,
// whatever its expressions (RabbitMQ's vhost access).
func (s *Store) CanAccess(user, vhost string) bool { return s.Grant(user, vhost) != nil }

// Permissions lists every permission by vhost and user.
func (s *Store) Permissions() []PermissionEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []PermissionEntry
	for u, byV := range s.grants {
		for v, g := range byV {
			out = append(out, PermissionEntry{User: u, VHost: v, Permission: g.Permission})
		}
	}
	sortPerms(out)
	return out
}

// SetTopicPermission sets user's topic permission for t.Exchange in vhost.
func (s *Store) SetTopicPermission(user, vhost string, t TopicPermission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics[user] == nil {
		s.topics[user] = map[string]map[string]TopicPermission{}
	}
	if s.topics[user][vhost] == nil {
		s.topics[user][vhost] = map[string]TopicPermission{}
	}
	s.topics[user][vhost][t.Exchange] = t
	s.gen.Add(1)
}

// ClearTopicPermission removes user's topic permission for exchange in
// vhost, or all of them in vhost when exchange is "".
func (s *Store) ClearTopicPermission(user, vhost, exchange string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if exchange == "" {
		delete(s.topics[user], vhost)
	} else {
		delete(s.topics[user][vhost], exchange)
		if len(s.topics[user][vhost]) == 0 {
			delete(s.topics[user], vhost)
		}
	}
	if len(s.topics[user]) == 0 {
		delete(s.topics, user)
	}
	s.gen.Add(1)
}

// TopicPermissions lists every topic permission.
func (s *Store) TopicPermissions() []TopicPermissionEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []TopicPermissionEntry
	for u, byV := range s.topics {
		for v, byX := range byV {
			for _, t := range byX {
				out = append(out, TopicPermissionEntry{User: u, VHost: v, TopicPermission: t})
			}
		}
	}
	sortTopics(out)
	return out
}

// TopicRules compiles user's topic permissions in vhost for one
// connection; nil when there are none (everything allowed). quote turns
// the value of a variable ({username}, {vhost}, {client_id}) into a
// regular expression matching it in the resources checked (nil:
// regexp.QuoteMeta); MQTT passes one that writes the value as its topics
// are written, as routing keys.
func (s *Store) TopicRules(user, vhost, clientID string, quote func(string) string) *TopicRules {
	s.mu.RLock()
	byX := s.topics[user][vhost]
	if len(byX) == 0 {
		s.mu.RUnlock()
		return nil
	}
	tps := make([]TopicPermission, 0, len(byX))
	for _, t := range byX {
		tps = append(tps, t)
	}
	s.mu.RUnlock()
	r := &TopicRules{byExchange: make(map[string]*topicRule, len(tps))}
	for _, t := range tps {
		w, _ := CompilePattern(expandTopic(t.Write, user, vhost, clientID, quote))
		rd, _ := CompilePattern(expandTopic(t.Read, user, vhost, clientID, quote))
		r.byExchange[t.Exchange] = &topicRule{write: w, read: rd}
	}
	return r
}

// DeleteVHost forgets every permission, topic permission and limit in
// vhost, as deleting a vhost does in RabbitMQ.
func (s *Store) DeleteVHost(vhost string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u, byV := range s.grants {
		delete(byV, vhost)
		if len(byV) == 0 {
			delete(s.grants, u)
		}
	}
	for u, byV := range s.topics {
		delete(byV, vhost)
		if len(byV) == 0 {
			delete(s.topics, u)
		}
	}
	delete(s.vlimits, vhost)
	s.gen.Add(1)
}

// Reset empties the store of users, permissions and limits (a cluster
// node restoring a snapshot replaces its state wholesale). Open
// connections stay counted.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users, s.verified = map[string]*User{}, map[string][32]byte{}
	s.grants, s.topics = map[string]map[string]*Grant{}, map[string]map[string]map[string]TopicPermission{}
	s.vlimits, s.ulimits = map[string]map[string]int64{}, map[string]map[string]int64{}
	s.gen.Add(1)
}
