package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/tern-broker/tern/internal/auth"
)

// Users, permissions, topic permissions, limits and vhost deletion are
// definitions too: commands applied by one function (applySecurity), in
// the definitions log on a single node and through the metadata Raft group
// in a cluster, so every node authenticates and authorizes alike and a
// user made through the HTTP API survives restarts. The state lives in the
// broker's auth.Store (Config.Users), which the protocol adapters read.
// Commands are validated (expressions compile, the user and vhost exist)
// before they are made: applying one cannot fail.

// PutUser creates or replaces a user. PasswordHash is an argon2id PHC
// string, or "" for a user that cannot log in with a password (only with
// a client certificate).
type PutUser struct {
	Name, PasswordHash string
	Tags               []string
	LoopbackOnly       bool
}

// DeleteUser removes a user with its permissions and limits.
type DeleteUser struct{ Name string }

// SetPermission sets a user's configure/write/read expressions in a vhost.
type SetPermission struct {
	VHost, User string
	auth.Permission
}

// ClearPermission removes a user's permission in a vhost.
type ClearPermission struct{ VHost, User string }

// SetTopicPermission sets a user's topic permission for one exchange.
type SetTopicPermission struct {
	VHost, User string
	auth.TopicPermission
}

// ClearTopicPermission removes a user's topic permission for Exchange in
// VHost, or every one of them there when Exchange is "".
type ClearTopicPermission struct{ VHost, User, Exchange string }

// SetVHostLimit sets a vhost's limit (max-connections, max-queues); a
// negative Value clears it.
type SetVHostLimit struct {
	VHost, Name string
	Value       int64
}

// SetUserLimit sets a user's limit (max-connections, max-channels); a
// negative Value clears it.
type SetUserLimit struct {
	User, Name string
	Value      int64
}

// DeleteVHost deletes a vhost: its queues and their messages, its
// exchanges, its permissions and limits; its connections are closed.
type DeleteVHost struct{ Name string }

func (PutUser) command()              {}
func (DeleteUser) command()           {}
func (SetPermission) command()        {}
func (ClearPermission) command()      {}
func (SetTopicPermission) command()   {}
func (ClearTopicPermission) command() {}
func (SetVHostLimit) command()        {}
func (SetUserLimit) command()         {}
func (DeleteVHost) command()          {}

func isSecurity(c Command) bool {
	switch c.(type) {
	case PutUser, DeleteUser, SetPermission, ClearPermission, SetTopicPermission, ClearTopicPermission,
		SetVHostLimit, SetUserLimit, DeleteVHost:
		return true
	}
	return false
}

// Users is the broker's users, permissions and limits.
func (b *Broker) Users() *auth.Store { return b.users }

// Change makes a security command (users, permissions, limits, a vhost's
// deletion) at run time: on a single node it applies it and returns once
// it is in the definitions log; in a cluster it proposes it and returns
// once it is committed and applied here.
func (b *Broker) Change(c Command) error {
	if !isSecurity(c) {
		return fmt.Errorf("broker: Change takes users, permissions, limits and vhost deletion, not %T", c)
	}
	if b.clustered() {
		ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
		defer cancel()
		if err := b.cfg.Replication.Metadata.Propose(ctx, c); err != nil {
			return causedf(KindResourceError, err, "could not replicate the definition change")
		}
		return nil
	}
	return b.applySecurity(c, false)
}

// applySecurity applies a security command under b.mu and, unless
// replaying, logs it there (so a snapshot, which holds b.mu, sees it or
// not as a whole) and waits until it is durable.
func (b *Broker) applySecurity(c Command, replay bool) error {
	fx := &effects{replay: replay}
	var closers []func()
	b.mu.Lock()
	if !b.appliesLocked(c) {
		b.mu.Unlock()
		return nil
	}
	switch c := c.(type) {
	case PutUser:
		b.users.Put(auth.User{Name: c.Name, PasswordHash: c.PasswordHash, Tags: slices.Clone(c.Tags), LoopbackOnly: c.LoopbackOnly})
	case DeleteUser:
		b.users.Delete(c.Name)
		closers = b.userClosers.take(c.Name)
	case SetPermission:
		b.users.SetPermission(c.User, c.VHost, c.Permission)
	case ClearPermission:
		b.users.ClearPermission(c.User, c.VHost)
	case SetTopicPermission:
		b.users.SetTopicPermission(c.User, c.VHost, c.TopicPermission)
	case ClearTopicPermission:
		b.users.ClearTopicPermission(c.User, c.VHost, c.Exchange)
	case SetVHostLimit:
		b.users.SetVHostLimit(c.VHost, c.Name, c.Value)
	case SetUserLimit:
		b.users.SetUserLimit(c.User, c.Name, c.Value)
	case DeleteVHost:
		closers = b.deleteVHostLocked(c.Name, fx)
	}
	b.logLocked(c, fx)
	b.mu.Unlock()
	err := b.finish(fx)
	fx.cancelAll()
	for _, f := range closers {
		f()
	}
	return err
}

// appliesLocked says whether c finds what it names: a permission or limit
// of a user or in a vhost that was deleted meanwhile (a concurrent API
// request, applied after the deletion) changes nothing, so no permission
// outlives its user or vhost. Deterministic: it reads only the
// definitions. b.mu is held.
func (b *Broker) appliesLocked(c Command) bool {
	user := func(n string) bool { _, ok := b.users.Lookup(n); return ok }
	vhost := func(n string) bool { return b.vhosts[n] != nil }
	switch c := c.(type) {
	case SetPermission:
		return user(c.User) && vhost(c.VHost)
	case SetTopicPermission:
		return user(c.User) && vhost(c.VHost)
	case SetVHostLimit:
		return vhost(c.VHost)
	case SetUserLimit:
		return user(c.User)
	}
	return true
}

// deleteVHostLocked removes a vhost with its queues (their logs go once
// the deletion is durable) and exchanges, and returns its connections'
// closers. b.mu is held.
func (b *Broker) deleteVHostLocked(name string, fx *effects) []func() {
	v := b.vhosts[name]
	b.users.DeleteVHost(name)
	if v == nil {
		return nil
	}
	sub := &effects{replay: true, replicated: fx.replicated}
	v.mu.Lock()
	for _, q := range v.queues.all() {
		v.applyDeleteQueueLocked(DeleteQueue{VHost: name, Name: q.cfg.Name, ID: q.id}, sub)
	}
	v.exchanges.Range(func(_, xv any) bool {
		if x := xv.(*Exchange); x.delayed != nil {
			x.delayed.stop()
		}
		return true
	})
	v.mu.Unlock()
	delete(b.vhosts, name)
	fx.dropLogs = append(fx.dropLogs, sub.dropLogs...)
	fx.cancel = append(fx.cancel, sub.cancel...)
	fx.messages += sub.messages
	return v.takeClosers()
}

// logLocked appends a command that belongs to no vhost to the definitions
// log. b.mu is held.
func (b *Broker) logLocked(c Command, fx *effects) {
	st := b.cfg.Storage
	if fx.replay || st == nil || b.clustered() {
		return
	}
	seq, err := st.AppendCommand(c)
	if err != nil {
		fx.logErr = err
		return
	}
	fx.seq = seq
}

// closers are the vhost's open connections, closed when it is deleted.
type closers struct {
	mu   sync.Mutex
	next uint64
	fns  map[uint64]func()
	gone bool
}

// OnDelete registers close, called (once, without locks held) if the
// vhost is deleted; remove unregisters it. A connection registers at open
// and removes itself at close. On a vhost already deleted it reports
// false and registers nothing.
func (v *VHost) OnDelete(close func()) (remove func(), ok bool) {
	c := &v.closers
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return func() {}, false
	}
	if c.fns == nil {
		c.fns = map[uint64]func(){}
	}
	c.next++
	id := c.next
	c.fns[id] = close
	return func() {
		c.mu.Lock()
		delete(c.fns, id)
		c.mu.Unlock()
	}, true
}

// Deleted says whether the vhost was deleted.
func (v *VHost) Deleted() bool {
	v.closers.mu.Lock()
	defer v.closers.mu.Unlock()
	return v.closers.gone
}

func (v *VHost) takeClosers() []func() {
	c := &v.closers
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	out := make([]func(), 0, len(c.fns))
	for _, f := range c.fns {
		out = append(out, f)
	}
	c.fns = nil
	return out
}

// securityDefinitions adds the users, permissions, topic permissions and
// limits to d.
func (b *Broker) securityDefinitions(d *Definitions) {
	for _, u := range b.users.Users() {
		d.Users = append(d.Users, PutUser{Name: u.Name, PasswordHash: u.PasswordHash, Tags: u.Tags, LoopbackOnly: u.LoopbackOnly})
	}
	d.Permissions = b.users.Permissions()
	d.TopicPermissions = b.users.TopicPermissions()
	d.VHostLimits = b.users.VHostLimits()
	d.UserLimits = b.users.UserLimits()
}

// securityCommands are the commands that make d's users, permissions and
// limits.
func securityCommands(d *Definitions) []Command {
	var out []Command
	for _, u := range d.Users {
		out = append(out, u)
	}
	for _, p := range d.Permissions {
		out = append(out, SetPermission{VHost: p.VHost, User: p.User, Permission: p.Permission})
	}
	for _, t := range d.TopicPermissions {
		out = append(out, SetTopicPermission{VHost: t.VHost, User: t.User, TopicPermission: t.TopicPermission})
	}
	for _, l := range d.VHostLimits {
		for n, v := range l.Value {
			out = append(out, SetVHostLimit{VHost: l.VHost, Name: n, Value: v})
		}
	}
	for _, l := range d.UserLimits {
		for n, v := range l.Value {
			out = append(out, SetUserLimit{User: l.User, Name: n, Value: v})
		}
	}
	return out
}

// userClosers are the open connections of each user, closed when the user
// is deleted, as RabbitMQ closes a deleted user's connections.
type userClosers struct {
	mu   sync.Mutex
	next uint64
	fns  map[string]map[uint64]func()
}

// OnUserDeleted registers close, called (once, without locks held) if
// user is deleted; remove unregisters it.
func (b *Broker) OnUserDeleted(user string, close func()) (remove func()) {
	u := &b.userClosers
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fns == nil {
		u.fns = map[string]map[uint64]func(){}
	}
	if u.fns[user] == nil {
		u.fns[user] = map[uint64]func(){}
	}
	u.next++
	id := u.next
	u.fns[user][id] = close
	return func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		delete(u.fns[user], id)
		if len(u.fns[user]) == 0 {
			delete(u.fns, user)
		}
	}
}

func (u *userClosers) take(user string) []func() {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]func(), 0, len(u.fns[user]))
	for _, f := range u.fns[user] {
		out = append(out, f)
	}
	delete(u.fns, user)
	return out
}
