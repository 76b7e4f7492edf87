package auth

import (
	"fmt"
	"net"
)

// AuthenticateCert logs in the user a verified client certificate names
// (SASL EXTERNAL, MQTT certificate login): the TLS handshake proved the
// client holds the certificate's key, so no password is checked, but the
// user must exist and its loopback restriction still applies.
func (s *Store) AuthenticateCert(name string, remote net.Addr) (User, error) {
	u, ok := s.Lookup(name)
	if !ok {
		return User{}, fmt.Errorf("%w: user '%s' (from the client certificate) does not exist", ErrRefused, name)
	}
	if u.LoopbackOnly && !isLoopback(remote) {
		return User{}, fmt.Errorf("%w: user '%s' can only connect via localhost", ErrRefused, name)
	}
	return u, nil
}
