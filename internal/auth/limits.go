package auth

import (
	"fmt"
	"sort"
	"sync"
)

// Limit names, RabbitMQ's.
const (
	LimitMaxConnections = "max-connections"
	LimitMaxQueues      = "max-queues"
	LimitMaxChannels    = "max-channels"
	// LimitMaxMessageSize is a vhost's largest message body (AMQP) or
	// PUBLISH payload (MQTT), in bytes. RabbitMQ has no such vhost
	// limit, only the node-wide max_message_size; the name follows its
	// vhost limits'.
	LimitMaxMessageSize = "max-message-size"
)

// VHostLimitNames and UserLimitNames are the limits each may have.
var (
	VHostLimitNames = []string{LimitMaxConnections, LimitMaxQueues, LimitMaxMessageSize}
	UserLimitNames  = []string{LimitMaxConnections, LimitMaxChannels}
)

// LimitEntry is one vhost's or user's limits, as RabbitMQ's HTTP API lists
// them.
type LimitEntry struct {
	VHost string           `json:"vhost,omitempty"`
	User  string           `json:"user,omitempty"`
	Value map[string]int64 `json:"value"`
}

// SetVHostLimit sets (value ≥ 0) or clears (value < 0) a vhost's limit.
func (s *Store) SetVHostLimit(vhost, name string, value int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	setLimit(s.vlimits, vhost, name, value)
	s.gen.Add(1)
}

// SetUserLimit sets (value ≥ 0) or clears (value < 0) a user's limit.
func (s *Store) SetUserLimit(user, name string, value int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	setLimit(s.ulimits, user, name, value)
	s.gen.Add(1)
}

func setLimit(m map[string]map[string]int64, key, name string, value int64) {
	if value < 0 {
		delete(m[key], name)
		if len(m[key]) == 0 {
			delete(m, key)
		}
		return
	}
	if m[key] == nil {
		m[key] = map[string]int64{}
	}
	m[key][name] = value
}

// VHostLimit returns a vhost's limit, -1 when it has none.
func (s *Store) VHostLimit(vhost, name string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return limitOf(s.vlimits, vhost, name)
}

// UserLimit returns a user's limit, -1 when it has none.
func (s *Store) UserLimit(user, name string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return limitOf(s.ulimits, user, name)
}

func limitOf(m map[string]map[string]int64, key, name string) int64 {
	if v, ok := m[key][name]; ok {
		return v
	}
	return -1
}

// VHostLimits lists the vhosts' limits by vhost.
func (s *Store) VHostLimits() []LimitEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return limitEntries(s.vlimits, func(k string, v map[string]int64) LimitEntry { return LimitEntry{VHost: k, Value: v} })
}

// UserLimits lists the users' limits by user.
func (s *Store) UserLimits() []LimitEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return limitEntries(s.ulimits, func(k string, v map[string]int64) LimitEntry { return LimitEntry{User: k, Value: v} })
}

func limitEntries(m map[string]map[string]int64, mk func(string, map[string]int64) LimitEntry) []LimitEntry {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]LimitEntry, 0, len(keys))
	for _, k := range keys {
		v := make(map[string]int64, len(m[k]))
		for n, x := range m[k] {
			v[n] = x
		}
		out = append(out, mk(k, v))
	}
	return out
}

// LimitError is a connection or channel refused by a limit. The protocol
// adapters word it as RabbitMQ does.
type LimitError struct {
	// Scope is "vhost" or "user"; Name the vhost or user; Limit the
	// limit's name and Value its value.
	Scope, Name, Limit string
	Value              int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("auth: %s '%s' limit %s (%d) is reached", e.Scope, e.Name, e.Limit, e.Value)
}

// openCounts are the connections and channels open on this node, per
// vhost and per user, counted against the limits. In a cluster every
// node counts its own.
type openCounts struct {
	mu         sync.Mutex
	vhostConns map[string]int64
	userConns  map[string]int64
	userChans  map[string]int64
}

// OpenConnection counts a connection of user to vhost, or refuses it with
// a *LimitError when the vhost's or the user's max-connections is
// reached. release uncounts it (call it once).
func (s *Store) OpenConnection(user, vhost string) (release func(), err error) {
	vmax, umax := s.VHostLimit(vhost, LimitMaxConnections), s.UserLimit(user, LimitMaxConnections)
	o := &s.open
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.vhostConns == nil {
		o.vhostConns, o.userConns, o.userChans = map[string]int64{}, map[string]int64{}, map[string]int64{}
	}
	if vmax >= 0 && o.vhostConns[vhost] >= vmax {
		return nil, &LimitError{Scope: "vhost", Name: vhost, Limit: LimitMaxConnections, Value: vmax}
	}
	if umax >= 0 && o.userConns[user] >= umax {
		return nil, &LimitError{Scope: "user", Name: user, Limit: LimitMaxConnections, Value: umax}
	}
	o.vhostConns[vhost]++
	o.userConns[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			decr(o.vhostConns, vhost)
			decr(o.userConns, user)
		})
	}, nil
}

// OpenChannel counts a channel of user, or refuses it with a *LimitError
// when the user's max-channels (across its connections) is reached.
func (s *Store) OpenChannel(user string) error {
	umax := s.UserLimit(user, LimitMaxChannels)
	o := &s.open
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.userChans == nil {
		o.vhostConns, o.userConns, o.userChans = map[string]int64{}, map[string]int64{}, map[string]int64{}
	}
	if umax >= 0 && o.userChans[user] >= umax {
		return &LimitError{Scope: "user", Name: user, Limit: LimitMaxChannels, Value: umax}
	}
	o.userChans[user]++
	return nil
}

// CloseChannel uncounts a channel OpenChannel counted.
func (s *Store) CloseChannel(user string) {
	o := &s.open
	o.mu.Lock()
	defer o.mu.Unlock()
	decr(o.userChans, user)
}

func decr(m map[string]int64, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// ValidLimit checks a limit's name for its scope ("vhost" or "user").
func ValidLimit(scope, name string) error {
	names := VHostLimitNames
	if scope == "user" {
		names = UserLimitNames
	}
	for _, n := range names {
		if n == name {
			return nil
		}
	}
	return fmt.Errorf("unknown %s limit %q (known: %v)", scope, name, names)
}
