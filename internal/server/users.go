package server

import (
	"slices"

	"github.com/tern-broker/tern/internal/auth"
	"github.com/tern-broker/tern/internal/broker"
)

// Users, permissions and limits are definitions (broker/security.go): they
// live in the definitions log (in a cluster, the metadata Raft group) and
// the HTTP API changes them at run time. The configuration file seeds
// them, as RabbitMQ's default_user does:
//
//   - When the definitions hold no user at all — a fresh data directory,
//     or one written by a version that kept users only in the
//     configuration — the configured users (or guest/guest, from loopback
//     only, when none is configured) are created, each with full
//     permissions (".*" ".*" ".*") on its vhosts ("*": every vhost there
//     is at that moment).
//   - On every later start the configured users are not applied again: a
//     password changed or a user deleted through the API stays so. A
//     configured user missing from the definitions is reported in the log.
//   - A vhost new to the configuration (created at this start) gives the
//     configured users that list it, or "*", full permissions on it, so a
//     configuration file keeps working as it did.

// seedUsers applies the configuration's users after recovery. newVHosts
// are the configured vhosts this start created.
//
// In a cluster every node of a fresh cluster seeds (the commands are
// idempotent but for the password's salt), a standby does not, and a
// failed proposal is logged rather than failing the start: another node
// seeds, or the next start does.
func (s *Server) seedUsers(newVHosts []string) error {
	b := s.Broker
	if s.node != nil && s.node.IsStandby() {
		return nil
	}
	change := func(c broker.Command) error {
		err := b.Change(c)
		if err != nil && s.node != nil {
			s.log.Warn("could not replicate a user from the configuration", "err", err)
			return nil
		}
		return err
	}
	users := s.configUsers()
	if len(s.Users.Users()) == 0 {
		for _, u := range users {
			if err := change(broker.PutUser{Name: u.Name, PasswordHash: u.PasswordHash, Tags: u.Tags, LoopbackOnly: u.LoopbackOnly}); err != nil {
				return err
			}
			for _, v := range b.VHosts() {
				if slices.Contains(u.VHosts, "*") || slices.Contains(u.VHosts, v.Name()) {
					if err := change(broker.SetPermission{VHost: v.Name(), User: u.Name, Permission: fullPermission}); err != nil {
						return err
					}
				}
			}
		}
		s.log.Info("users seeded from the configuration (the definitions had none)", "users", len(users))
	} else {
		for _, u := range users {
			if _, ok := s.Users.Lookup(u.Name); !ok && len(s.cfg.Users) > 0 {
				s.log.Warn("configured user does not exist in the definitions (deleted through the API, or added to the configuration after the first start); the configuration seeds users only on a fresh data directory — create it through the HTTP API", "user", u.Name)
			}
		}
		for _, v := range newVHosts {
			for _, u := range users {
				if _, ok := s.Users.Lookup(u.Name); ok && (slices.Contains(u.VHosts, "*") || slices.Contains(u.VHosts, v)) {
					if err := change(broker.SetPermission{VHost: v, User: u.Name, Permission: fullPermission}); err != nil {
						return err
					}
				}
			}
		}
	}
	if g, ok := s.Users.Lookup("guest"); ok && !g.LoopbackOnly && auth.VerifyPassword(g.PasswordHash, "guest") {
		s.log.Warn("user guest keeps its default password guest and may log in from any address (loopback_only is off): change its password or delete it")
	}
	return nil
}

var fullPermission = auth.Permission{Configure: ".*", Write: ".*", Read: ".*"}

// configUsers are the configured users with their hashes, or RabbitMQ's
// default guest/guest (loopback only, administrator) when none is
// configured.
func (s *Server) configUsers() []auth.User {
	if len(s.cfg.Users) == 0 {
		return []auth.User{{Name: "guest", PasswordHash: auth.HashPassword("guest"), LoopbackOnly: true, VHosts: []string{"*"}, Tags: []string{"administrator"}}}
	}
	out := make([]auth.User, 0, len(s.cfg.Users))
	for _, u := range s.cfg.Users {
		hash := u.PasswordHash
		if hash == "" {
			hash = auth.HashPassword(u.Password)
		}
		vhosts := u.VHosts
		if len(vhosts) == 0 {
			vhosts = []string{"/"}
		}
		out = append(out, auth.User{Name: u.Name, PasswordHash: hash, LoopbackOnly: u.LoopbackOnly, VHosts: vhosts, Tags: u.Tags})
	}
	return out
}
