package auth

import (
	"errors"
	"net"
	"testing"
)

func TestAuthenticateCert(t *testing.T) {
	t.Parallel()
	s := NewStore()
	s.Put(User{Name: "guest", PasswordHash: HashPassword("guest"), LoopbackOnly: true})
	s.Put(User{Name: "device-1", PasswordHash: HashPassword("x")})
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}
	for _, c := range []struct {
		user string
		from net.Addr
		ok   bool
	}{
		{"device-1", remote, true},
		{"guest", loop, true},
		{"guest", remote, false}, // loopback_only holds for certificates too
		{"nobody", loop, false},
	} {
		u, err := s.AuthenticateCert(c.user, c.from)
		if (err == nil) != c.ok || (err == nil && u.Name != c.user) {
			t.Errorf("%s from %v: %v %v, want ok=%v", c.user, c.from, u.Name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("error %v does not wrap ErrRefused", err)
		}
	}
}
