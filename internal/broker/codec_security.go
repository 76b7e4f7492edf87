package broker

import (
	"fmt"

	"github.com/tern-broker/tern/internal/auth"
)

// The security commands' fields in a command record (codec.go), absent
// from every other command's record.
type secJSON struct {
	User         string   `json:"user,omitempty"`
	PasswordHash string   `json:"password_hash,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	LoopbackOnly bool     `json:"loopback_only,omitempty"`
	Configure    string   `json:"configure,omitempty"`
	Write        string   `json:"write,omitempty"`
	Read         string   `json:"read,omitempty"`
	Exchange     string   `json:"exchange,omitempty"`
	Value        int64    `json:"value,omitempty"`
}

func encodeSecurity(c Command) cmdJSON {
	switch c := c.(type) {
	case PutUser:
		return cmdJSON{Op: "put_user", Name: c.Name, Sec: &secJSON{PasswordHash: c.PasswordHash, Tags: c.Tags, LoopbackOnly: c.LoopbackOnly}}
	case DeleteUser:
		return cmdJSON{Op: "delete_user", Name: c.Name}
	case SetPermission:
		return cmdJSON{Op: "set_permission", VHost: c.VHost, Sec: &secJSON{User: c.User, Configure: c.Configure, Write: c.Write, Read: c.Read}}
	case ClearPermission:
		return cmdJSON{Op: "clear_permission", VHost: c.VHost, Sec: &secJSON{User: c.User}}
	case SetTopicPermission:
		return cmdJSON{Op: "set_topic_permission", VHost: c.VHost, Sec: &secJSON{User: c.User, Exchange: c.Exchange, Write: c.Write, Read: c.Read}}
	case ClearTopicPermission:
		return cmdJSON{Op: "clear_topic_permission", VHost: c.VHost, Sec: &secJSON{User: c.User, Exchange: c.Exchange}}
	case SetVHostLimit:
		return cmdJSON{Op: "set_vhost_limit", VHost: c.VHost, Name: c.Name, Sec: &secJSON{Value: c.Value}}
	case SetUserLimit:
		return cmdJSON{Op: "set_user_limit", Name: c.Name, Sec: &secJSON{User: c.User, Value: c.Value}}
	case DeleteVHost:
		return cmdJSON{Op: "delete_vhost", Name: c.Name}
	}
	panic(fmt.Sprintf("broker: no encoding for %T", c))
}

// decodeSecurity decodes a security command; ok is false for another op.
func decodeSecurity(j cmdJSON) (Command, bool) {
	s := j.Sec
	if s == nil {
		s = &secJSON{}
	}
	switch j.Op {
	case "put_user":
		return PutUser{Name: j.Name, PasswordHash: s.PasswordHash, Tags: s.Tags, LoopbackOnly: s.LoopbackOnly}, true
	case "delete_user":
		return DeleteUser{Name: j.Name}, true
	case "set_permission":
		return SetPermission{VHost: j.VHost, User: s.User, Permission: auth.Permission{Configure: s.Configure, Write: s.Write, Read: s.Read}}, true
	case "clear_permission":
		return ClearPermission{VHost: j.VHost, User: s.User}, true
	case "set_topic_permission":
		return SetTopicPermission{VHost: j.VHost, User: s.User, TopicPermission: auth.TopicPermission{Exchange: s.Exchange, Write: s.Write, Read: s.Read}}, true
	case "clear_topic_permission":
		return ClearTopicPermission{VHost: j.VHost, User: s.User, Exchange: s.Exchange}, true
	case "set_vhost_limit":
		return SetVHostLimit{VHost: j.VHost, Name: j.Name, Value: s.Value}, true
	case "set_user_limit":
		return SetUserLimit{User: s.User, Name: j.Name, Value: s.Value}, true
	case "delete_vhost":
		return DeleteVHost{Name: j.Name}, true
	}
	return nil, false
}

// The definitions document's security sections (codec_defs.go), absent
// when empty so a document without users is what it was.
type secDefsJSON struct {
	Users            []userJSON                  `json:"users,omitempty"`
	Permissions      []auth.PermissionEntry      `json:"permissions,omitempty"`
	TopicPermissions []auth.TopicPermissionEntry `json:"topic_permissions,omitempty"`
	VHostLimits      []auth.LimitEntry           `json:"vhost_limits,omitempty"`
	UserLimits       []auth.LimitEntry           `json:"user_limits,omitempty"`
}

type userJSON struct {
	Name         string   `json:"name"`
	PasswordHash string   `json:"password_hash"`
	Tags         []string `json:"tags,omitempty"`
	LoopbackOnly bool     `json:"loopback_only,omitempty"`
}

func encodeSecDefs(d *Definitions) *secDefsJSON {
	if len(d.Users)+len(d.Permissions)+len(d.TopicPermissions)+len(d.VHostLimits)+len(d.UserLimits) == 0 {
		return nil
	}
	s := &secDefsJSON{Permissions: d.Permissions, TopicPermissions: d.TopicPermissions, VHostLimits: d.VHostLimits, UserLimits: d.UserLimits}
	for _, u := range d.Users {
		s.Users = append(s.Users, userJSON(u))
	}
	return s
}

func decodeSecDefs(s *secDefsJSON, d *Definitions) {
	if s == nil {
		return
	}
	d.Permissions, d.TopicPermissions, d.VHostLimits, d.UserLimits = s.Permissions, s.TopicPermissions, s.VHostLimits, s.UserLimits
	for _, u := range s.Users {
		d.Users = append(d.Users, PutUser(u))
	}
}
